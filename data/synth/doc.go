// Package synth generates golem's built-in data: seeded, reproducible text
// and tasks in English and Chinese that a tiny model (a few million
// parameters, a few minutes of CPU) can learn, and whose success a program
// can check. The end-to-end demo and many tests run on it.
//
// A [World] of people and towns, with jobs, ages, favourite colours, pets
// and friends, is the common ground. [Corpus] is pretraining text: the
// world's facts in varied wording, arithmetic, lists and plain
// "User: / Assistant:" dialogues. [Tasks] are instructions with reference
// answers (arithmetic and word problems worked step by step, questions
// about the world, string and list tasks, format constraints, polite
// refusals), split into train and held-out problems that never overlap
// ([SplitOf]). Tool-use tasks ([ToolKinds], asked for by name) teach a model
// to call the built-in calculator and lookup table ([RunTool]) in golem's
// chat format. Every [Task] checks answers to it ([Task.Check],
// [Task.Reward]), and an [Annotator] simulates the people who rank answers
// for a reward model. The writers export tasks, rankings and preferences as
// JSON lines in TRL's shapes. Images are the subpackage shapes: a world of
// coloured shapes with captions, questions and instructions.
package synth
