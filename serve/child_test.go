package serve

const childEnv = "GOLEM_SERVE_TEST_CHILD"

func runChild() int { return 0 }
