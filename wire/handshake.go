package wire

// The handshake (PROTOCOL.md §2), written once for both ends: the client
// sends its preamble and HELLO; the broker answers with its preamble and
// HELLO_OK, or with a fatal ERROR and closes.

// AppendOpening appends the preamble and one frame of type t: the
// client's HELLO, or the broker's HELLO_OK or refusal ERROR.
func AppendOpening(dst []byte, t Type, m Message) []byte {
	return AppendFrame(AppendPreamble(dst, Version), t, m)
}

// AppendRefusal appends the broker's preamble and e as a fatal ERROR.
func AppendRefusal(dst []byte, e *Error) []byte {
	f := e.ToProto(0, 0)
	f.Fatal = true
	return AppendOpening(dst, TypeError, f)
}

// ReadHello reads a client's opening. A violation is an *Error for the
// broker to send back with AppendRefusal; an I/O failure is returned as
// it is.
func ReadHello(r *Reader) (*Hello, error) {
	version, err := r.ReadPreamble()
	if err != nil {
		return nil, err
	}
	if version != Version {
		return nil, Errorf(ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION,
			"unsupported protocol version %d; this broker speaks %d", version, Version)
	}
	t, body, err := r.ReadFrame()
	if err != nil {
		return nil, err
	}
	if t != TypeHello {
		return nil, Errorf(ErrorCode_ERROR_CODE_UNEXPECTED_FRAME, "expected HELLO, got %v", t)
	}
	h := new(Hello)
	if err := h.UnmarshalVT(body); err != nil {
		return nil, Errorf(ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed HELLO: %v", err)
	}
	if err := CheckUTF8(h); err != nil {
		return nil, err
	}
	return h, nil
}

// ReadHelloOK reads the broker's answer to HELLO. The broker's refusal and
// a violation of the protocol are *Error values; an I/O failure is
// returned as it is.
func ReadHelloOK(r *Reader) (*HelloOK, error) {
	version, err := r.ReadPreamble()
	if err != nil {
		return nil, err
	}
	t, body, err := r.ReadFrame()
	switch {
	case err != nil:
		return nil, err
	case t == TypeError:
		return nil, DecodeError(body)
	case version != Version:
		return nil, Errorf(ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION, "broker speaks protocol version %d, this client %d", version, Version)
	case t != TypeHelloOK:
		return nil, Errorf(ErrorCode_ERROR_CODE_UNEXPECTED_FRAME, "expected HELLO_OK, got %v", t)
	}
	ok := new(HelloOK)
	if err := ok.UnmarshalVT(body); err != nil {
		return nil, Errorf(ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed HELLO_OK: %v", err)
	}
	return ok, nil
}

// DecodeError decodes an ERROR frame's body.
func DecodeError(body []byte) *Error {
	var f ErrorFrame
	if err := f.UnmarshalVT(body); err != nil {
		return Errorf(ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed ERROR: %v", err)
	}
	return FromProto(&f)
}
