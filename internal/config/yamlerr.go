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

func trimYAMLErr(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	return yamlLineRe.ReplaceAllString(strings.TrimPrefix(s, "line "), "")
}
