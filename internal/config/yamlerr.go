package config

import (
	"regexp"
	"strconv"
	"strings"
)

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// yamlLinePrefixRe is the "line N: " that yaml.v3 starts its messages
// with; the line goes into the position instead.
var yamlLinePrefixRe = regexp.MustCompile(`^line \d+: `)

func trimYAMLErr(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	return yamlLinePrefixRe.ReplaceAllString(s, "")
}
