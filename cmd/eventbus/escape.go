package main

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// Text output shows strings that local peers chose: client names,
// correlation ids, stages, executable paths. A peer could put terminal
// escape sequences (ESC [ ..., OSC 52 clipboard writes), carriage returns,
// bidi overrides or invalid UTF-8 in them, so every such string goes
// through safe before it reaches the operator's terminal. JSON output is
// exact and does not.

// safe returns s unchanged, without allocating, when every rune of it is
// graphic (letters, marks, numbers, punctuation, symbols, spaces); else a
// copy in which each backslash, control character (C0, DEL, C1), format
// character (bidi controls, zero-width characters), line or paragraph
// separator, private-use or unassigned code point and invalid UTF-8 byte
// is escaped as Go does: \\, \n, \x1b, \u202e, \xff. A backslash always
// starts an escape, so the result is unambiguous.
func safe(s string) string {
	i := unsafeIndex(s, false, false)
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s)+16)
	return string(appendEscaped(append(b, s[:i]...), s[i:]))
}

// appendSafe appends safe(s) to dst.
func appendSafe(dst []byte, s string) []byte {
	i := unsafeIndex(s, false, false)
	if i < 0 {
		return append(dst, s...)
	}
	return appendEscaped(append(dst, s[:i]...), s[i:])
}

// safeMessage is safe for a line the CLI did not build field by field,
// such as an error message: those hold backslashes of their own (Windows
// paths, Go-quoted strings), so it returns s as it is unless s holds
// something else that safe escapes, and then safe(s).
func safeMessage(s string) string {
	if unsafeIndex(s, true, false) < 0 {
		return s
	}
	return safe(s)
}

// safeLines is safeMessage for each line of s: for the acl package's
// listings of policies and decisions.
func safeLines(s string) string {
	if unsafeIndex(s, true, true) < 0 {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = safeMessage(l)
	}
	return strings.Join(lines, "\n")
}

// safeErr makes err's message safeMessage; errors.Is and As still see err.
func safeErr(err error) error {
	if err == nil {
		return nil
	}
	return &escapedError{err}
}

// safeRunE is run with its error made safeErr: errors from the broker and
// the library can echo what peers sent, and main prints them as they are.
func safeRunE(run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error { return safeErr(run(cmd, args)) }
}

type escapedError struct{ err error }

func (e *escapedError) Error() string { return safeMessage(e.err.Error()) }
func (e *escapedError) Unwrap() error { return e.err }

// unsafeIndex returns the index of the first byte of s that safe would
// escape, or -1; backslashes and newlines count only if not kept.
func unsafeIndex(s string, keepBackslash, keepNewline bool) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < ' ' || c == 0x7f || c == '\\') &&
				!(c == '\\' && keepBackslash) && !(c == '\n' && keepNewline) {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if escapedRune(r, size) {
			return i
		}
		i += size
	}
	return -1
}

// escapedRune reports whether safe escapes the non-ASCII rune r of size
// bytes: invalid UTF-8, or not graphic. unicode.IsGraphic leaves out
// controls, format characters (Cf: bidi controls, U+200B-U+200F, U+2060,
// U+FEFF, ...), U+2028/U+2029, private use and unassigned code points,
// which a newer terminal may treat as any of these.
func escapedRune(r rune, size int) bool {
	return (r == utf8.RuneError && size == 1) || !unicode.IsGraphic(r)
}

const lowerHex = "0123456789abcdef"

// appendEscaped appends s to dst, escaping what safe escapes.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '\\':
				dst = append(dst, `\\`...)
			case c >= ' ' && c != 0x7f:
				dst = append(dst, c)
			default:
				dst = appendControl(dst, c)
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, '\\', 'x', lowerHex[c>>4], lowerHex[c&0xf])
		case !escapedRune(r, size):
			dst = append(dst, s[i:i+size]...)
		case r < 0x10000:
			dst = appendHex(append(dst, '\\', 'u'), r, 4)
		default:
			dst = appendHex(append(dst, '\\', 'U'), r, 8)
		}
		i += size
	}
	return dst
}

// appendControl appends the escape of an ASCII control character: the
// short form Go has for it, else \xHH.
func appendControl(dst []byte, c byte) []byte {
	if i := strings.IndexByte("\a\b\f\n\r\t\v", c); i >= 0 {
		return append(dst, '\\', "abfnrtv"[i])
	}
	return append(dst, '\\', 'x', lowerHex[c>>4], lowerHex[c&0xf])
}

func appendHex(dst []byte, r rune, digits int) []byte {
	for shift := 4 * (digits - 1); shift >= 0; shift -= 4 {
		dst = append(dst, lowerHex[(r>>shift)&0xf])
	}
	return dst
}
