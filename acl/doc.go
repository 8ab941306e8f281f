// Package acl decides who may publish and subscribe to which topic, from a
// policy file and the identity the kernel reports for each peer (docs/SECURITY.md §3).
//
// # Identity
//
// At hello the broker calls [Policy.Admit] with the peer's uid, gid and pid
// (read at accept; on Windows its pid and user SID), its executable path
// where the OS reveals it, the component name the peer claims and any
// token it presents. A claim is checked against the component's entry in
// the policy, each list only where given: uids and gids for a Unix peer,
// sids for a Windows one, and executables; a claim that does not fit is
// refused with a [*RefusedError] naming the component and the mismatch. A peer that
// claims nothing is admitted as an anonymous, unregistered [Identity]. The
// claim "agent" also needs the agent token, compared in constant time with
// the one in the policy's agent.token_file ([EnsureTokenFile]); the broker's
// in-process client is the agent without a token ([InProcessIdentity]).
//
// # Levels
//
// Every topic has an access level:
//
//   - Public: any connected peer may publish and subscribe.
//   - Restricted: only a registered component whose policy grants the topic
//     for that action.
//   - Privileged: publishing only by the agent (and only if the agent's
//     grants allow it, which by default they do); subscribing needs a
//     registered component granted it.
//
// Grants (allow and deny rules) are consulted only for Restricted and
// Privileged topics: a Public topic is open to every peer, so denying it to a
// registered component would protect nothing.
//
// # Precedence
//
// The rules are deterministic and independent of their order in the file
// (file order only decides which of two identical verdicts Explain names).
//
// A topic's level comes from the topic rules (topics: in the file). Of the
// rules whose pattern matches the topic, the most specific decides, where
//
//  1. a pattern with more literal segments is more specific;
//  2. then one with fewer wildcard segments ('+' or '#');
//  3. then one without '#' ('#' is the least specific segment).
//
// Between equally specific rules the stricter level wins (privileged over
// restricted over public: deny beats allow). When no rule matches, the
// level is default_access (restricted unless configured).
//
// A component's grants for an action are its publish (or subscribe) list,
// allow rules, and its deny_publish (or deny_subscribe) list, deny rules. Of
// those matching the topic the most specific decides, by the same order; at
// equal specificity deny beats allow; when none matches the topic is not
// granted. The agent's lists default to "#" (everything) when the policy
// does not give them.
//
// Topics beginning with '$' are the broker's own. '#' and other patterns
// whose first segment is a wildcard never match them (docs/TOPICS.md §1), so only
// a rule that names "$..." literally covers them; otherwise default_access
// applies. The broker refuses client publishes to them before asking this
// package.
//
// # Subscriptions
//
// [Policy.CheckSubscribe] classifies a subscription pattern for an identity:
// [Allow] when every topic the pattern can match is allowed, [Deny] when
// none is, and [Filter] otherwise, in which case the broker must check each
// delivery with Check(Subscribe, topic). The classification is exact: the
// topics a pattern can match fall into finitely many classes that every
// rule treats alike (segments equal to a literal of some rule, and "any
// other" segments), and one representative of each class is checked with
// the same code as [Policy.Check]. If a policy is so large that this would
// take more than a fixed number of steps (maxExplore) the answer is Filter, which is always
// safe. No wildcard can therefore deliver a topic Check would refuse: "#"
// subscribed by an anonymous peer delivers only Public topics.
//
// # Hot path
//
// A [Policy] is immutable and safe for concurrent use. [Cache] remembers one
// identity's decisions per (action, topic) in a bounded map, so the broker's
// steady-state check is a map lookup without allocation ([Cache.CheckBytes]).
// [DenialLog] counts denials per component and rate-limits their logging.
package acl
