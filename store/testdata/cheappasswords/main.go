// Command cheappasswords is a program, not a test, that calls
// store.CheapPasswordsForTests: TestCheapPasswordsOnlyInTests builds and
// runs it to see that production cannot weaken password hashing.
package main

import (
	"fmt"

	"github.com/golem-ml/golem/store"
)

func main() {
	store.CheapPasswordsForTests()
	fmt.Println("password hashes made cheap outside a test")
}
