module github.com/ecsproject/ecsd/test/multihost

go 1.26.0

require github.com/ecsproject/ecsd v0.0.0

replace github.com/ecsproject/ecsd => ../..
