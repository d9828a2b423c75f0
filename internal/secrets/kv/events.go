package kv

import (
	"encoding/json"
	"strconv"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// Change events. Every request that changes a secret reports it in its
// response (logical.Response.Events); the pipeline publishes it once the
// request succeeded, with the mount's path in front of the paths below
// ("secret/data/app"). A KV v2 request that changes nothing (a delete of
// a missing key, an undelete of a live version) reports nothing; a KV v1
// delete cannot tell and always reports. The types and fields are Vault's
// KV plugin's; an event never carries data.
//
//	type                   path           data_path      other metadata
//	kv-v2/data-write       data/<key>     data/<key>     current_version, oldest_version
//	kv-v2/data-patch       data/<key>     data/<key>     current_version, oldest_version
//	kv-v2/data-delete      data/<key>     data/<key>*    current_version, oldest_version
//	kv-v2/delete           delete/<key>   data/<key>*    current_version, oldest_version, deleted_versions
//	kv-v2/undelete         undelete/<key> data/<key>     current_version, oldest_version, undeleted_versions
//	kv-v2/destroy          destroy/<key>  data/<key>*    current_version, oldest_version, destroyed_versions
//	kv-v2/metadata-write   metadata/<key> metadata/<key>
//	kv-v2/metadata-patch   metadata/<key> metadata/<key>
//	kv-v2/metadata-delete  metadata/<key> data/<key>*
//	kv-v2/config-write     config         config
//	kv-v1/write            <key>          <key>
//	kv-v1/delete           <key>          <key>*
//
// Every event also has operation (the part of the type after the '/') and
// modified ("true"). The *_versions fields are JSON lists of the version
// numbers the request named ("[1,2]"), versions are decimal strings.
//
// * Vault sends these without a data_path, which makes them visible to
// root tokens only. Vigil gives them the path where the key's data is
// read, so that a watcher allowed to read a secret also learns that it was
// deleted or destroyed.

// v2Event is a KV v2 event about meta's key.
func v2Event(op, path, dataPath string, meta *keyMetadata, extra ...string) logical.Event {
	md := map[string]string{
		"current_version": strconv.FormatInt(meta.CurrentVersion, 10),
		"oldest_version":  strconv.FormatInt(meta.OldestVersion, 10),
	}
	for i := 0; i+1 < len(extra); i += 2 {
		md[extra[i]] = extra[i+1]
	}
	return logical.Event{Type: "kv-v2/" + op, Operation: op, Path: path, DataPath: dataPath, Metadata: md}
}

// v2MetadataEvent is a KV v2 event about a key's settings or existence,
// which carries no versions.
func v2MetadataEvent(op, key, dataPath string) logical.Event {
	return logical.Event{Type: "kv-v2/" + op, Operation: op, Path: "metadata/" + key, DataPath: dataPath}
}

// v1Event is a KV v1 event about key.
func v1Event(op, key string) logical.Event {
	return logical.Event{Type: "kv-v1/" + op, Operation: op, Path: key, DataPath: key}
}

// versionList renders version numbers as the *_versions fields hold them.
func versionList(versions []int) string {
	if versions == nil {
		versions = []int{}
	}
	b, _ := json.Marshal(versions) // a list of ints always marshals
	return string(b)
}

// withEvent adds ev to resp (a new empty response when nil: it renders as
// 204, as nil does).
func withEvent(resp *logical.Response, ev logical.Event) *logical.Response {
	if resp == nil {
		resp = &logical.Response{}
	}
	resp.Events = append(resp.Events, ev)
	return resp
}
