package web

import _ "embed"

// CopyJS is the one script of the dashboard and the portal: the copy
// buttons next to new tokens. Both serve it from their own /static/copy.js.
//
//go:embed static/copy.js
var CopyJS []byte
