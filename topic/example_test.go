package topic_test

import (
	"errors"
	"fmt"

	"daemoneye.dev/eventbus/topic"
)

func ExampleValidate() {
	err := topic.Validate("events.Process.lifecycle")
	fmt.Println(err)
	fmt.Println(errors.Is(err, topic.ErrInvalidTopic))

	var e *topic.Error
	if errors.As(topic.ValidatePattern("events.#.lifecycle"), &e) {
		fmt.Println(e.Rule)
	}
	// Output:
	// invalid topic "events.Process.lifecycle": segment "Process": invalid character 'P' at byte 0 (allowed: a-z 0-9 - _)
	// true
	// '#' must be the last segment
}

func ExampleMatch() {
	fmt.Println(topic.Match("events.process.#", "events.process"))
	fmt.Println(topic.Match("events.+.lifecycle", "events.network.lifecycle"))
	fmt.Println(topic.Match("events.+.lifecycle", "events.lifecycle"))
	fmt.Println(topic.Match("#", "$sys.stats"))
	fmt.Println(topic.Match("$sys.#", "$sys.stats"))
	// Output:
	// true
	// true
	// false
	// false
	// true
}

func ExampleIndex() {
	ix := topic.NewIndex[string](topic.DefaultCacheSize)
	ix.Insert("events.process.#", "agent")
	ix.Insert("events.+.lifecycle", "agent") // agent is still matched once
	ix.Insert("events.+.lifecycle", "auditor")
	ix.Insert("#", "recorder")

	fmt.Println(ix.Match("events.process.lifecycle"))
	fmt.Println(ix.Match("$sys.stats")) // '#' does not reach the broker's topics
	ix.Remove("events.+.lifecycle", "auditor")
	fmt.Println(ix.Match("events.network.lifecycle"))
	// Output:
	// [recorder agent auditor]
	// []
	// [recorder agent]
}
