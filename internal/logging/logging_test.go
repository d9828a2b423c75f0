package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"trace": LevelTrace, "debug": slog.LevelDebug, "": slog.LevelInfo, "INFO": slog.LevelInfo,
		"warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError,
	} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseLevel("loud"); err == nil || !strings.Contains(err.Error(), `"loud"`) {
		t.Errorf("bad level: %v", err)
	}
}

func TestJSONAndLevelChange(t *testing.T) {
	var buf bytes.Buffer
	log, lv, err := New(Options{Level: "warn", Format: "json", Output: &buf})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record: %q", buf.String())
	}
	if rec["msg"] != "shown" || rec["k"] != "v" {
		t.Fatalf("record %v", rec)
	}
	buf.Reset()
	lv.Set(LevelTrace)
	log.Log(t.Context(), LevelTrace, "deep")
	if !strings.Contains(buf.String(), `"level":"TRACE"`) {
		t.Fatalf("trace record %q", buf.String())
	}
}

func TestTextAndErrors(t *testing.T) {
	var buf bytes.Buffer
	log, _, err := New(Options{Format: "standard", Output: &buf})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", "a", 1)
	if !strings.Contains(buf.String(), "msg=hello a=1") {
		t.Fatalf("text output %q", buf.String())
	}
	if _, _, err := New(Options{Format: "xml"}); err == nil {
		t.Fatal("bad format accepted")
	}
	if _, _, err := New(Options{Level: "chatty"}); err == nil {
		t.Fatal("bad level accepted")
	}
}
