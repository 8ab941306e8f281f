package acl

import (
	"errors"
	"fmt"
	"strings"

	"daemoneye.dev/eventbus/topic"
)

// ErrDenied matches every [*DeniedError] with errors.Is.
var ErrDenied = errors.New("acl: denied")

// Authorizer decides whether an identity may do an action on a topic; a nil
// error allows it. For Subscribe, topic is a delivered topic, not a pattern.
type Authorizer interface {
	Authorize(id Identity, action Action, topic string) error
}

// AuthorizerFunc adapts a function to [Authorizer].
type AuthorizerFunc func(id Identity, action Action, topic string) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(id Identity, action Action, topic string) error {
	return f(id, action, topic)
}

// DeniedError is a refused action. Its message names the topic, the action
// and the missing right.
type DeniedError struct {
	Action   Action
	Topic    string // the topic, or the subscription pattern
	Identity Identity
	Reason   string // e.g. "privileged topic, publisher is not the agent"
	Rule     *Rule  // the rule that decided; nil when default_access did

	cause error // an invalid topic's *topic.Error
}

// Error returns the message.
func (e *DeniedError) Error() string {
	return fmt.Sprintf("acl: %s to %s denied: %s", e.Action, e.Topic, e.Reason)
}

// Is reports whether target is ErrDenied.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// Unwrap returns the topic validation error behind a denial, if any.
func (e *DeniedError) Unwrap() error { return e.cause }

// verdict is one decision with everything Explain reports.
type verdict struct {
	level     Level
	levelRule *Rule // nil: default_access
	grant     *Rule // the allow or deny rule consulted; nil: none matched or none needed
	code      reasonCode
}

type reasonCode uint8

const (
	okPublic reasonCode = iota
	okGranted
	denyNotAgent     // privileged publish by someone else
	denyUnregistered // restricted or privileged, anonymous peer
	denyNoGrant      // no rule of the component matches
	denyByRule       // a deny rule matched
)

func (v verdict) allowed() bool { return v.code <= okGranted }

// decide applies the levels of the package doc to a valid topic.
func (p *Policy) decide(id Identity, a Action, topicName string) verdict {
	var v verdict
	v.level, v.levelRule = p.LevelOf(topicName)
	switch {
	case v.level == Public:
		v.code = okPublic
	case v.level == Privileged && a == Publish && !id.Agent:
		v.code = denyNotAgent
	case !id.registered():
		v.code = denyUnregistered
	default:
		v.grant = p.grantOf(id.grantee(), a, topicName)
		switch {
		case v.grant == nil:
			v.code = denyNoGrant
		case v.grant.Kind == DenyRule:
			v.code = denyByRule
		default:
			v.code = okGranted
		}
	}
	return v
}

// reason phrases v for people.
func (v verdict) reason(id Identity, a Action) string {
	lvl := v.level.String() + " topic"
	switch v.code {
	case okPublic:
		return "public topic: open to every peer"
	case okGranted:
		return fmt.Sprintf("%s, component %s is granted it by %s", lvl, id.grantee(), v.grant.short())
	case denyNotAgent:
		return lvl + ", publisher is not the agent"
	case denyUnregistered:
		return fmt.Sprintf("%s, %s is not a registered component", lvl, peerRole(a))
	case denyNoGrant:
		return fmt.Sprintf("%s, component %s has no %s grant for it", lvl, id.grantee(), a)
	case denyByRule:
		return fmt.Sprintf("%s, component %s is denied it by %s", lvl, id.grantee(), v.grant.short())
	}
	return "unknown"
}

func peerRole(a Action) string {
	if a == Publish {
		return "publisher"
	}
	return "subscriber"
}

// deciding returns the rule that decided v: the grant rule when one
// matched, else the rule that set the level.
func (v verdict) deciding() *Rule {
	if v.grant != nil {
		return v.grant
	}
	return v.levelRule
}

func (v verdict) err(id Identity, a Action, topicName string) error {
	if v.allowed() {
		return nil
	}
	return &DeniedError{Action: a, Topic: topicName, Identity: id, Reason: v.reason(id, a), Rule: clone(v.deciding())}
}

// Check returns nil if id may do action on topicName (a publish topic, or
// a topic delivered to a subscriber), or a [*DeniedError]. An invalid topic,
// a wildcard pattern included, is denied: use [Policy.CheckSubscribe] for
// subscription patterns. Check allocates only to deny, or when the
// policy's indexes miss their bounded caches; [Cache] avoids even that.
func (p *Policy) Check(id Identity, action Action, topicName string) error {
	if err := checkInput(id, action, topicName); err != nil {
		return err
	}
	return p.decide(id, action, topicName).err(id, action, topicName)
}

// Authorize is Check, making Policy an [Authorizer].
func (p *Policy) Authorize(id Identity, action Action, topicName string) error {
	return p.Check(id, action, topicName)
}

// checkInput denies an unknown action or an invalid topic.
func checkInput(id Identity, a Action, topicName string) error {
	if a > Subscribe {
		return &DeniedError{Action: a, Topic: topicName, Identity: id, Reason: "unknown action"}
	}
	if err := topic.Validate(topicName); err != nil {
		var te *topic.Error
		reason := err.Error()
		if errors.As(err, &te) {
			reason = "invalid topic: " + te.Rule
		}
		return &DeniedError{Action: a, Topic: topicName, Identity: id, Reason: reason, cause: err}
	}
	return nil
}

// Explanation says how a decision was reached, for `eventbus policy
// explain`.
type Explanation struct {
	Identity  Identity
	Action    Action
	Topic     string
	Allowed   bool
	Level     Level // 0 when the topic is invalid
	LevelRule *Rule // the topic rule that set Level; nil when default_access did
	Grant     *Rule // the allow or deny rule that decided; nil when none was needed or none matched
	Reason    string
	Err       error // the *DeniedError Check returns; nil when allowed
}

// Explain decides like [Policy.Check] and reports which rules decided.
func (p *Policy) Explain(id Identity, action Action, topicName string) Explanation {
	e := Explanation{Identity: id, Action: action, Topic: topicName}
	if err := checkInput(id, action, topicName); err != nil {
		e.Err, e.Reason = err, err.(*DeniedError).Reason
		return e
	}
	v := p.decide(id, action, topicName)
	e.Allowed, e.Level, e.Reason, e.Err = v.allowed(), v.level, v.reason(id, action), v.err(id, action, topicName)
	e.LevelRule, e.Grant = clone(v.levelRule), clone(v.grant)
	return e
}

func clone(r *Rule) *Rule {
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

// String returns the name used in messages and output.
func (e Explanation) String() string {
	var b strings.Builder
	verdict := "denied"
	if e.Allowed {
		verdict = "allowed"
	}
	fmt.Fprintf(&b, "%s %s by %s: %s\n", e.Action, e.Topic, e.Identity, verdict)
	switch {
	case e.Level == 0:
	case e.LevelRule != nil:
		fmt.Fprintf(&b, "  level:  %s, from %s\n", e.Level, e.LevelRule)
	default:
		fmt.Fprintf(&b, "  level:  %s, from default_access (no topic rule matches)\n", e.Level)
	}
	if e.Grant != nil {
		fmt.Fprintf(&b, "  grant:  %s\n", e.Grant)
	}
	fmt.Fprintf(&b, "  reason: %s\n", e.Reason)
	return b.String()
}
