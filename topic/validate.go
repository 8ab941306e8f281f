package topic

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Limits of docs/TOPICS.md §1.
const (
	MaxTopicBytes   = 255 // bytes in a whole topic or pattern
	MaxSegments     = 8   // dot-separated segments
	MaxSegmentBytes = 64  // bytes in one segment
)

// maxQuoted bounds how much of a rejected input an error message repeats.
const maxQuoted = 64

// Every *Error matches one of these with errors.Is, by what was validated.
var (
	ErrInvalidTopic   = errors.New("topic: invalid topic")
	ErrInvalidPattern = errors.New("topic: invalid pattern")
)

// Error describes the rule a topic or pattern broke. errors.Is matches it
// against ErrInvalidTopic, or ErrInvalidPattern when Pattern is set.
type Error struct {
	Input   string // the rejected topic or pattern, unmodified
	Pattern bool   // Input was validated as a pattern
	Rule    string // the broken rule, e.g. "topic too long: 300 bytes, limit 255"
}

// Error returns the message.
func (e *Error) Error() string {
	return fmt.Sprintf("invalid %s %s: %s", kindName(e.Pattern), quote(e.Input), e.Rule)
}

// Is reports whether target is the sentinel for e's kind of input.
func (e *Error) Is(target error) bool {
	if e.Pattern {
		return target == ErrInvalidPattern
	}
	return target == ErrInvalidTopic
}

// Validate reports whether topic is a valid topic, naming the broken rule if not.
// Reserved "$" topics are valid; see IsReserved.
func Validate(topic string) error {
	if v := check(topic, false); v.code != ruleOK {
		return v.err(topic, false)
	}
	return nil
}

// ValidateBytes is Validate for a byte slice. It does not allocate when the
// topic is valid, so the broker can call it on every publish.
func ValidateBytes(topic []byte) error {
	if v := check(topic, false); v.code != ruleOK {
		return v.err(string(topic), false)
	}
	return nil
}

// ValidatePattern reports whether pattern is a valid pattern: a topic whose
// segments may also be '+' or, last, '#'.
func ValidatePattern(pattern string) error {
	if v := check(pattern, true); v.code != ruleOK {
		return v.err(pattern, true)
	}
	return nil
}

// IsReserved reports whether topic is one of the broker's own ("$...").
func IsReserved(topic string) bool { return len(topic) > 0 && topic[0] == '$' }

// IsReservedBytes is IsReserved for a byte slice.
func IsReservedBytes(topic []byte) bool { return len(topic) > 0 && topic[0] == '$' }

// IsWildcard reports whether pattern has a '+' or '#' segment.
func IsWildcard(pattern string) bool {
	for start := 0; start <= len(pattern); {
		end := segmentEnd(pattern, start)
		if end-start == 1 && (pattern[start] == '+' || pattern[start] == '#') {
			return true
		}
		start = end + 1
	}
	return false
}

// segmentEnd returns the index of the '.' ending the segment that starts at
// start, or len(s).
func segmentEnd[S ~string | ~[]byte](s S, start int) int {
	for start < len(s) && s[start] != '.' {
		start++
	}
	return start
}

// segChar marks the bytes a segment may hold anywhere.
var segChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['_'] = true, true
	return t
}()

type ruleCode uint8

const (
	ruleOK ruleCode = iota
	ruleEmpty
	ruleTooLong
	ruleTooManySegments
	ruleEmptySegment
	ruleSegmentTooLong
	ruleBadChar
	ruleStar
	ruleDollarAlone
	ruleDollarPlace
	ruleWildcardInTopic
	ruleWildcardPart
	ruleHashNotLast
)

// violation records a broken rule without allocating; err formats it.
type violation struct {
	code       ruleCode
	n          int // bytes or segments counted, or the segment number
	start, end int // bounds of the offending segment
	at         int // offset of the offending byte in the segment
}

// check applies the rules to s; pattern allows whole-segment wildcards.
func check[S ~string | ~[]byte](s S, pattern bool) violation {
	switch {
	case len(s) == 0:
		return violation{code: ruleEmpty}
	case len(s) > MaxTopicBytes:
		return violation{code: ruleTooLong, n: len(s)}
	}
	segs := 1
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			segs++
		}
	}
	if segs > MaxSegments {
		return violation{code: ruleTooManySegments, n: segs}
	}
	for num, start := 1, 0; start <= len(s); num++ {
		end := segmentEnd(s, start)
		if v := checkSegment(s[start:end], num == 1, end == len(s), pattern); v.code != ruleOK {
			v.n, v.start, v.end = num, start, end
			return v
		}
		start = end + 1
	}
	return violation{}
}

func checkSegment[S ~string | ~[]byte](seg S, first, last, pattern bool) violation {
	switch {
	case len(seg) == 0:
		return violation{code: ruleEmptySegment}
	case len(seg) > MaxSegmentBytes:
		return violation{code: ruleSegmentTooLong}
	case pattern && len(seg) == 1 && (seg[0] == '+' || seg[0] == '#'):
		if seg[0] == '#' && !last {
			return violation{code: ruleHashNotLast}
		}
		return violation{}
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case segChar[c]:
		case c == '$' && i == 0 && first:
			if len(seg) == 1 {
				return violation{code: ruleDollarAlone}
			}
		case c == '$':
			return violation{code: ruleDollarPlace, at: i}
		case c == '*':
			return violation{code: ruleStar, at: i}
		case (c == '+' || c == '#') && pattern:
			return violation{code: ruleWildcardPart, at: i}
		case c == '+' || c == '#':
			return violation{code: ruleWildcardInTopic, at: i}
		default:
			return violation{code: ruleBadChar, at: i}
		}
	}
	return violation{}
}

func (v violation) err(in string, pattern bool) error {
	return &Error{Input: in, Pattern: pattern, Rule: v.rule(in, pattern)}
}

// rule phrases the broken rule with the numbers involved.
func (v violation) rule(in string, pattern bool) string {
	kind := kindName(pattern)
	seg := in[v.start:v.end]
	switch v.code {
	case ruleEmpty:
		return "empty " + kind
	case ruleTooLong:
		return fmt.Sprintf("%s too long: %d bytes, limit %d", kind, v.n, MaxTopicBytes)
	case ruleTooManySegments:
		return fmt.Sprintf("%s has %d segments, limit %d", kind, v.n, MaxSegments)
	case ruleEmptySegment:
		return fmt.Sprintf("empty segment %d in %s%s", v.n, quote(in), dotHint(in, v.start))
	case ruleSegmentTooLong:
		return fmt.Sprintf("segment too long: %d bytes, limit %d", len(seg), MaxSegmentBytes)
	case ruleHashNotLast:
		return "'#' must be the last segment"
	case ruleDollarAlone:
		return fmt.Sprintf("segment %q: '$' must be followed by a name", seg)
	}
	var what string
	switch c := seg[v.at]; v.code {
	case ruleStar:
		what = "'*' is not a wildcard; use '+' or '#'"
	case ruleDollarPlace:
		what = "'$' is allowed only as the first byte of a topic"
	case ruleWildcardPart:
		what = fmt.Sprintf("wildcard '%c' must be a whole segment", c)
	case ruleWildcardInTopic:
		what = fmt.Sprintf("wildcard '%c' is not allowed in a topic (only in patterns)", c)
	default:
		what = fmt.Sprintf("%s at byte %d (allowed: a-z 0-9 - _)", describeByte(seg[v.at:]), v.at)
	}
	return fmt.Sprintf("segment %q: %s", seg, what)
}

func kindName(pattern bool) string {
	if pattern {
		return "pattern"
	}
	return "topic"
}

func dotHint(in string, start int) string {
	switch {
	case start == 0:
		return " (leading dot)"
	case start == len(in):
		return " (trailing dot)"
	}
	return ""
}

// describeByte names the character at the start of s, or the raw byte when s
// is not valid UTF-8 there.
func describeByte(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("invalid byte 0x%02x", s[0])
	}
	return fmt.Sprintf("invalid character %q", r)
}

// quote quotes s, cut to about maxQuoted bytes so huge inputs stay readable.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	n := maxQuoted
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + "..."
}
