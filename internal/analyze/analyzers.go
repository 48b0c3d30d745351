package analyze

import (
	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/analyze/apk"
	"github.com/lading-dev/lading/internal/analyze/dotnet"
	"github.com/lading-dev/lading/internal/analyze/dpkg"
	"github.com/lading-dev/lading/internal/analyze/golang"
	"github.com/lading-dev/lading/internal/analyze/java"
	"github.com/lading-dev/lading/internal/analyze/npm"
	"github.com/lading-dev/lading/internal/analyze/osrelease"
	"github.com/lading-dev/lading/internal/analyze/php"
	"github.com/lading-dev/lading/internal/analyze/python"
	"github.com/lading-dev/lading/internal/analyze/rpm"
	"github.com/lading-dev/lading/internal/analyze/ruby"
	"github.com/lading-dev/lading/internal/analyze/rust"
)

// Default returns the analyzers lading runs, in the order their results
// are merged: the OS first, then OS packages, then language packages.
func Default() []analyzer.Analyzer {
	return []analyzer.Analyzer{
		osrelease.New(),
		apk.New(),
		dpkg.New(),
		rpm.New(),
		npm.New(),
		python.New(),
		golang.New(),
		java.New(),
		ruby.New(),
		rust.New(),
		php.New(),
		dotnet.New(),
	}
}
