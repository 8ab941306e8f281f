package wire

import (
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// CheckUTF8 refuses a decoded message holding a string field, at any
// depth, that is not valid UTF-8: the generated decoder does not check,
// and such a string must never reach another peer (PROTOCOL.md §3). It is
// for the control frames; PUBLISH is scanned, and its strings checked, on
// its own path.
func CheckUTF8(m protoreflect.ProtoMessage) error {
	return checkMessageUTF8(m.ProtoReflect())
}

func checkMessageUTF8(m protoreflect.Message) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = checkValueUTF8(fd, l.Get(i))
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				switch {
				case fd.MapKey().Kind() == protoreflect.StringKind && !utf8.ValidString(k.String()),
					fd.MapValue().Kind() == protoreflect.StringKind && !utf8.ValidString(mv.String()):
					err = notUTF8(fd)
				default:
					err = checkValueUTF8(fd.MapValue(), mv)
				}
				return err == nil
			})
		default:
			err = checkValueUTF8(fd, v)
		}
		return err == nil
	})
	return err
}

func checkValueUTF8(fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if !utf8.ValidString(v.String()) {
			return notUTF8(fd)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return checkMessageUTF8(v.Message())
	}
	return nil
}

func notUTF8(fd protoreflect.FieldDescriptor) error {
	return Errorf(ErrorCode_ERROR_CODE_MALFORMED_FRAME, "%s: field %s is not valid UTF-8", fd.ContainingMessage().Name(), fd.Name())
}
