package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/correlation"
)

// printer writes messages for sub, one line each. Every line is a single
// write to out, so a reader sees it at once.
type printer struct {
	out    io.Writer
	errOut io.Writer
	json   bool
	buf    []byte
}

// jsonMessage is sub --json's output: payload is set when the payload is
// valid UTF-8, payload_base64 otherwise.
type jsonMessage struct {
	Topic              string  `json:"topic"`
	Payload            *string `json:"payload,omitempty"`
	PayloadBase64      string  `json:"payload_base64,omitempty"`
	PublisherPID       int     `json:"publisher_pid"`
	PublisherUID       uint32  `json:"publisher_uid"`
	PublisherComponent string  `json:"publisher_component"`
	PublishedAt        string  `json:"published_at"`
	ReceivedAt         string  `json:"received_at"`
	Missed             uint64  `json:"missed"`
	// Correlation is the message's metadata; absent when it has none.
	Correlation *jsonCorrelation `json:"correlation,omitempty"`
	// Final is present, and true, only on a publisher's final result.
	Final bool `json:"final,omitempty"`
}

// jsonCorrelation is correlation.Metadata as sub --json prints it: every
// field, tags always an object.
type jsonCorrelation struct {
	CorrelationID string            `json:"correlation_id"`
	ParentID      string            `json:"parent_id,omitempty"`
	RootID        string            `json:"root_id"`
	Sequence      uint64            `json:"sequence"`
	Stage         string            `json:"stage"`
	SourceProcess string            `json:"source_process"`
	Tags          map[string]string `json:"tags"`
	StartedAt     string            `json:"started_at,omitempty"`
}

func (p *printer) print(m *eventbus.Message) error {
	if m.Missed > 0 {
		fmt.Fprintf(p.errOut, "# missed %d messages\n", m.Missed)
	}
	p.buf = p.buf[:0]
	if p.json {
		b, err := json.Marshal(toJSON(m))
		if err != nil {
			return err
		}
		p.buf = append(p.buf, b...)
	} else {
		p.buf = appendSafe(p.buf, m.Topic)
		p.buf = append(p.buf, ' ')
		p.buf = appendText(p.buf, m.Payload)
	}
	p.buf = append(p.buf, '\n')
	_, err := p.out.Write(p.buf)
	return err
}

func toJSON(m *eventbus.Message) jsonMessage {
	j := jsonMessage{
		Topic:              m.Topic,
		PublisherPID:       m.PublisherPID,
		PublisherUID:       m.PublisherUID,
		PublisherComponent: m.PublisherComponent,
		PublishedAt:        m.PublishedAt.UTC().Format(time.RFC3339Nano),
		ReceivedAt:         m.ReceivedAt.UTC().Format(time.RFC3339Nano),
		Missed:             m.Missed,
		Final:              m.Final,
	}
	j.Correlation = correlationJSON(m.Correlation())
	if utf8.Valid(m.Payload) {
		s := string(m.Payload)
		j.Payload = &s
	} else {
		j.PayloadBase64 = base64.StdEncoding.EncodeToString(m.Payload)
	}
	return j
}

// correlationJSON is c for sub --json; nil for none. Tags are never null.
func correlationJSON(c *correlation.Metadata) *jsonCorrelation {
	if c == nil {
		return nil
	}
	j := &jsonCorrelation{
		CorrelationID: c.CorrelationID,
		ParentID:      c.ParentID,
		RootID:        c.RootID,
		Sequence:      c.Sequence,
		Stage:         c.Stage,
		SourceProcess: c.SourceProcess,
		Tags:          c.Tags,
	}
	if j.Tags == nil {
		j.Tags = map[string]string{}
	}
	if !c.StartedAt.IsZero() {
		j.StartedAt = c.StartedAt.UTC().Format(time.RFC3339Nano)
	}
	return j
}

// appendText appends the payload as is if it is printable UTF-8 text
// (tabs allowed), else Go-quoted, so that a message stays on one line.
func appendText(dst, payload []byte) []byte {
	if isPrintable(payload) {
		return append(dst, payload...)
	}
	return strconv.AppendQuote(dst, string(payload))
}

func isPrintable(b []byte) bool {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if (r == utf8.RuneError && size <= 1) || (r != '\t' && !unicode.IsPrint(r)) {
			return false
		}
		b = b[size:]
	}
	return true
}
