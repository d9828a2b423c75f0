package events

import (
	"encoding/json"
	"sync"
	"time"
)

// Metadata keys every event carries, as Vault names them.
const (
	// MetaPath is the path of the request (or work) that made the change,
	// mount included: "secret/data/app".
	MetaPath = "path"
	// MetaDataPath is the path where the changed data is read, mount
	// included ("secret/data/app"); absent when there is none. Access to
	// an event is decided on it.
	MetaDataPath = "data_path"
	// MetaOperation names the change: "data-write".
	MetaOperation = "operation"
	// MetaModified is "true": the data at MetaDataPath changed and may be
	// read again.
	MetaModified = "modified"
)

// The constant parts of the wire form, Vault's.
const (
	cloudEventSource      = "https://vaultproject.io/"
	cloudEventSpecVersion = "1.0"
	// cloudEventType is the CloudEvents type of every event: the event
	// type proper is data.event_type.
	cloudEventType = "*"
	// cloudEventContentType goes in "datacontentype", spelled as Vault's
	// event library spells it.
	cloudEventContentType = "application/cloudevents"
)

// Event is one change, as published. It is immutable once published:
// subscribers share it.
type Event struct {
	// ID is unique to the event (a UUID).
	ID string
	// Type is the event type: "kv-v2/data-write".
	Type string
	// Time is when the change was made.
	Time time.Time
	// Plugin describes the mount the change was made in.
	Plugin PluginInfo
	// Metadata are the event's fields (see the Meta keys); all strings,
	// never secret material.
	Metadata map[string]string

	jsonOnce sync.Once
	jsonMsg  []byte
}

// PluginInfo describes the mount an event comes from.
type PluginInfo struct {
	// MountClass is "secret" or "auth".
	MountClass string
	// MountAccessor is the mount's accessor ("kv_1a2b3c4d").
	MountAccessor string
	// MountPath is the mount's path with its trailing '/' ("secret/").
	MountPath string
	// Plugin is the mount's type ("kv", "database").
	Plugin string
}

// DataPath returns the event's data path, "" when it has none.
func (e *Event) DataPath() string { return e.Metadata[MetaDataPath] }

// Operation returns the event's operation metadata.
func (e *Event) Operation() string { return e.Metadata[MetaOperation] }

// JSON returns the event as the subscribe endpoint sends it with
// json=true: Vault's CloudEvents envelope, one line ending in '\n'.
//
//	{"id":"…","source":"https://vaultproject.io/","specversion":"1.0","type":"*",
//	 "data":{"event":{"id":"…","metadata":{"current_version":"3","data_path":"secret/data/app",
//	   "modified":"true","oldest_version":"1","operation":"data-write","path":"secret/data/app"}},
//	   "event_type":"kv-v2/data-write",
//	   "plugin_info":{"mount_class":"secret","mount_accessor":"kv_…","mount_path":"secret/","plugin":"kv"}},
//	 "datacontentype":"application/cloudevents","time":"2025-01-02T03:04:05.123456789Z"}
//
// It is computed once and shared by every subscriber; callers must not
// modify it.
func (e *Event) JSON() []byte {
	e.jsonOnce.Do(func() {
		md := e.Metadata
		if md == nil {
			md = map[string]string{}
		}
		w := wireEvent{
			ID:              e.ID,
			Source:          cloudEventSource,
			SpecVersion:     cloudEventSpecVersion,
			Type:            cloudEventType,
			DataContentType: cloudEventContentType,
			Time:            e.Time.UTC().Format(time.RFC3339Nano),
		}
		w.Data.Event.ID = e.ID
		w.Data.Event.Metadata = md
		w.Data.EventType = e.Type
		w.Data.PluginInfo = wirePlugin(e.Plugin)
		b, err := json.Marshal(&w)
		if err != nil {
			// Strings and maps of strings always marshal.
			panic("events: marshal event: " + err.Error())
		}
		e.jsonMsg = append(b, '\n')
	})
	return e.jsonMsg
}

// wireEvent is the JSON form of an event (see Event.JSON).
type wireEvent struct {
	ID          string `json:"id"`
	Source      string `json:"source"`
	SpecVersion string `json:"specversion"`
	Type        string `json:"type"`
	Data        struct {
		Event struct {
			ID       string            `json:"id"`
			Metadata map[string]string `json:"metadata"`
		} `json:"event"`
		EventType  string     `json:"event_type"`
		PluginInfo wirePlugin `json:"plugin_info"`
	} `json:"data"`
	DataContentType string `json:"datacontentype"`
	Time            string `json:"time"`
}

type wirePlugin struct {
	MountClass    string `json:"mount_class"`
	MountAccessor string `json:"mount_accessor"`
	MountPath     string `json:"mount_path"`
	Plugin        string `json:"plugin"`
}
