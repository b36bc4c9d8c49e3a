module github.com/ecsproject/ecsd

go 1.26
