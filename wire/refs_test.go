package wire

import (
	"errors"
	"testing"
)

func TestRefEncoderDefinesOnceThenNames(t *testing.T) {
	var e RefEncoder[string]
	f := e.Fields("a", []byte("base-a"), 1)
	if !f.Define || f.Ref != 1 || string(f.Base) != "base-a" || f.Seq != 1 {
		t.Fatalf("first Fields(a) = %+v; want a definition of ref 1", f)
	}
	// Not sent (dropped): the next frame defines it again.
	if f2 := e.Fields("a", []byte("base-a"), 2); !f2.Define || f2.Ref != 1 {
		t.Fatalf("Fields(a) after an unsent definition = %+v; want ref 1 defined again", f2)
	}
	e.Defined("a", 1)
	if f := e.Fields("a", nil, 3); f.Define || f.Ref != 1 || f.Seq != 3 || f.Base != nil {
		t.Errorf("Fields(a) once defined = %+v; want ref 1 by name, seq 3", f)
	}
	f = e.Fields("b", []byte("base-b"), 1)
	if !f.Define || f.Ref != 2 {
		t.Fatalf("Fields(b) = %+v; want a definition of ref 2", f)
	}
	e.Defined("b", 2)
	if f := e.Fields("a", nil, 4); f.Define || f.Ref != 1 {
		t.Errorf("Fields(a) after b = %+v; want ref 1 by name", f)
	}
}

func TestRefEncoderReusesRefs(t *testing.T) {
	var e RefEncoder[int]
	for k := 1; k <= MaxCorrelationRef; k++ {
		f := e.Fields(k, []byte{1}, 0)
		if !f.Define || f.Ref != uint64(k) {
			t.Fatalf("Fields(%d) = %+v; want ref %d defined", k, f, k)
		}
		e.Defined(k, f.Ref)
	}
	f := e.Fields(MaxCorrelationRef+1, []byte{1}, 0)
	if !f.Define || f.Ref != 1 {
		t.Fatalf("Fields past the last ref = %+v; want ref 1 defined again", f)
	}
	e.Defined(MaxCorrelationRef+1, 1)
	// Every earlier key is forgotten: their refs are being reused.
	if f := e.Fields(2, []byte{1}, 0); !f.Define || f.Ref != 2 {
		t.Errorf("Fields(2) after reuse began = %+v; want ref 2 defined again", f)
	}
}

func TestRefTable(t *testing.T) {
	var tab RefTable[string]
	for _, ref := range []uint64{0, MaxCorrelationRef + 1} {
		if _, err := tab.Lookup(ref); !errors.Is(err, ErrInvalidCorrelation) {
			t.Errorf("Lookup(%d) error = %v; want ErrInvalidCorrelation", ref, err)
		}
		if err := tab.Define(ref, new(string)); !errors.Is(err, ErrInvalidCorrelation) {
			t.Errorf("Define(%d) error = %v; want ErrInvalidCorrelation", ref, err)
		}
	}
	if _, err := tab.Lookup(5); !errors.Is(err, ErrInvalidCorrelation) {
		t.Errorf("Lookup of an undefined ref: error = %v; want ErrInvalidCorrelation", err)
	}
	v := "meta"
	if err := tab.Define(5, &v); err != nil {
		t.Fatal(err)
	}
	if got, err := tab.Lookup(5); err != nil || got != &v {
		t.Errorf("Lookup(5) = %v, %v; want the definition", got, err)
	}
	tab.Define(5, nil) // a refused redefinition
	if _, err := tab.Lookup(5); err == nil {
		t.Error("Lookup after a refused redefinition succeeded; want the ref undefined")
	}
}

func TestRefEncoderForget(t *testing.T) {
	var e RefEncoder[string]
	f := e.Fields("a", []byte("base"), 1)
	e.Defined("a", f.Ref)
	e.Forget("a") // the receiver refused the definition
	if f := e.Fields("a", []byte("base"), 2); !f.Define || string(f.Base) != "base" {
		t.Errorf("Fields after Forget = %+v; want a new definition", f)
	}
}
