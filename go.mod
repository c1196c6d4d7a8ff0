module github.com/golem-ml/golem

go 1.26
