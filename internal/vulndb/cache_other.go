//go:build !linux

package vulndb

import "os"

// dropCache does nothing where there is no fadvise.
func dropCache(*os.File) {}
