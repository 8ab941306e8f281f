package wire

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

func TestCheckUTF8(t *testing.T) {
	bad := "a\xffb"
	tests := []struct {
		name  string
		m     protoreflect.ProtoMessage
		field string // "" for valid
	}{
		{"valid hello", &Hello{ClientName: "procmond ✓", Component: "procmond"}, ""},
		{"client name", &Hello{ClientName: bad}, "client_name"},
		{"pattern in a list", &Subscribe{Patterns: []string{"a.b", bad}}, "patterns"},
		{"nested filter stage", &Subscribe{Patterns: []string{"a"}, Filter: &CorrelationFilter{Stages: []string{bad}}}, "stages"},
		{"map key", &Query{Kind: &Query_History{History: &HistoryQuery{Tags: map[string]string{bad: "v"}}}}, "tags"},
		{"map value", &Query{Kind: &Query_History{History: &HistoryQuery{Tags: map[string]string{"k": bad}}}}, "tags"},
		{"oneof string", &Query{Kind: &Query_Timeline{Timeline: bad}}, "timeline"},
		{"bytes are not strings", &Hello{Token: []byte{0xff}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckUTF8(tt.m)
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("CheckUTF8 = %v; want nil", err)
			case tt.field != "" && (!errors.Is(err, ErrMalformedFrame) || !strings.Contains(err.Error(), tt.field)):
				t.Errorf("CheckUTF8 = %v; want ErrMalformedFrame naming %s", err, tt.field)
			}
		})
	}
}
