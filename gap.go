package eventbus

import (
	"fmt"
	"time"
)

// Gap tells a subscription that the client's connection to the broker
// failed and was restored, and what that means for its messages. While no
// connection existed, nothing was delivered to the subscription, and the
// broker counts nothing for a subscriber it does not know: a Gap is the
// only notice there is.
type Gap struct {
	// BrokerRestarted is true when the broker is a new one (another
	// epoch, Client.BrokerEpoch): messages published while no broker ran
	// were delivered to no one, and so were those publishers resent or
	// published to the new broker before this subscription was restored
	// there (they are confirmed: the broker had no subscriber for them). False: the same broker lived on, and
	// delivered messages published meanwhile to the subscribers it had.
	BrokerRestarted  bool
	PrevEpoch, Epoch uint64
	// Down is how long the client was without a connection.
	Down time.Duration
}

// String is the notice as the CLI prints it.
func (g Gap) String() string {
	if g.BrokerRestarted {
		return fmt.Sprintf("broker restarted (epoch %016x, was %016x) after %v without a connection: messages published while no broker ran were not delivered",
			g.Epoch, g.PrevEpoch, g.Down.Round(time.Millisecond))
	}
	return fmt.Sprintf("reconnected to the same broker after %v: messages published meanwhile were not delivered to this subscription and are not counted",
		g.Down.Round(time.Millisecond))
}

// gapBuffer is how many gap notices a subscription's Gaps channel holds.
const gapBuffer = 16

// Gaps delivers the subscription's gap notices, one per reconnect, unless
// SubscribeOptions.OnGap takes them. A notice that does not fit (16 unread)
// is dropped; every notice is also logged (WithLogger).
func (s *Subscription) Gaps() <-chan Gap { return s.gaps }

// notifyGap gives every subscription g.
func (c *Client) notifyGap(g Gap) {
	c.opts.logger.Warn("eventbus: "+g.String(), "addr", c.addr)
	c.mu.Lock()
	subs := make([]*Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	for _, s := range subs {
		if s.onGap != nil {
			s.onGap(g)
			continue
		}
		select {
		case s.gaps <- g:
		default:
		}
	}
}
