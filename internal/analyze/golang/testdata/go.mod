module example.com/app

go 1.22

toolchain go1.22.3

require (
	github.com/gin-gonic/gin v1.8.1
	golang.org/x/text v0.3.6 // indirect
	example.com/local v0.0.0
	example.com/forked v1.0.0
)

require gopkg.in/yaml.v2 v2.4.0 // indirect

replace example.com/local => ../local

replace example.com/forked v1.0.0 => example.com/fork v1.0.1
