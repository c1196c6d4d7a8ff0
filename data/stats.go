package data

// Stats describes a set of examples, for people inspecting a data set.
type Stats struct {
	Examples int
	Plain    int            // examples in standard form (plain strings)
	Kinds    map[Kind]int   // examples by kind
	Roles    map[string]int // messages by role, over each example's Messages
	// Turns per example (messages in Messages, system messages included).
	MinTurns, MaxTurns int
	MeanTurns          float64
	// Characters per example over Messages, in bytes of UTF-8.
	MeanBytes float64
	MaxBytes  int
	// Answers per Ranking example, when there are any.
	MinAnswers, MaxAnswers int
}

// Describe counts kinds, roles, turns and sizes over examples.
func Describe(examples []Example) Stats {
	s := Stats{Examples: len(examples), Kinds: map[Kind]int{}, Roles: map[string]int{}}
	var turns, size int
	for i := range examples {
		e := &examples[i]
		s.Kinds[e.Kind]++
		if e.Plain {
			s.Plain++
		}
		msgs := e.Messages()
		n, b := len(msgs), 0
		for _, m := range msgs {
			s.Roles[m.Role]++
			b += len(m.Content)
		}
		if i == 0 || n < s.MinTurns {
			s.MinTurns = n
		}
		s.MaxTurns = max(s.MaxTurns, n)
		s.MaxBytes = max(s.MaxBytes, b)
		turns += n
		size += b
		if e.Kind == Ranking {
			k := len(e.Completions)
			if s.MinAnswers == 0 || k < s.MinAnswers {
				s.MinAnswers = k
			}
			s.MaxAnswers = max(s.MaxAnswers, k)
		}
	}
	if len(examples) > 0 {
		s.MeanTurns = float64(turns) / float64(len(examples))
		s.MeanBytes = float64(size) / float64(len(examples))
	}
	return s
}
