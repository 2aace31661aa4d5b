package crs

// The go-ftw test format (ftw-tests-schema v2): loading the YAML, rendering
// a stage's input as the raw bytes go-ftw would send, and judging a stage's
// output the way go-ftw's default mode does, as the suite's README lays out.
// Moved here from internal/waf, where the runner first drove the bare engine.

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	pathpkg "path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

// The go-ftw test format (ftw-tests-schema v2), the fields this runner
// knows. Unknown fields are an error, so nothing is silently skipped.
type ftwFile struct {
	Meta   yaml.Node `yaml:"meta"`
	Author string    `yaml:"author"` // informational; 932271.yaml has it outside meta
	RuleID int       `yaml:"rule_id"`
	Tests  []ftwTest `yaml:"tests"`
}

type ftwTest struct {
	TestID int        `yaml:"test_id"`
	Desc   string     `yaml:"desc"`
	Stages []ftwStage `yaml:"stages"`
}

type ftwStage struct {
	Input  ftwInput  `yaml:"input"`
	Output ftwOutput `yaml:"output"`
}

type ftwInput struct {
	DestAddr            *string   `yaml:"dest_addr"`
	Port                *int      `yaml:"port"`
	Protocol            *string   `yaml:"protocol"`
	Method              *string   `yaml:"method"`
	URI                 *string   `yaml:"uri"`
	Version             *string   `yaml:"version"`
	Headers             yaml.Node `yaml:"headers"`
	Data                *string   `yaml:"data"`
	EncodedData         *string   `yaml:"encoded_data"`
	AutocompleteHeaders *bool     `yaml:"autocomplete_headers"`
	StopMagic           *bool     `yaml:"stop_magic"`
	EncodedRequest      string    `yaml:"encoded_request"`
}

type ftwOutput struct {
	Status           int    `yaml:"status"`
	ResponseContains string `yaml:"response_contains"`
	Log              ftwLog `yaml:"log"`
	LogContains      string `yaml:"log_contains"`
	NoLogContains    string `yaml:"no_log_contains"`
	ExpectError      *bool  `yaml:"expect_error"`
	RetryOnce        *bool  `yaml:"retry_once"`
	Isolated         bool   `yaml:"isolated"`
}

type ftwLog struct {
	ExpectIDs    []int  `yaml:"expect_ids"`
	NoExpectIDs  []int  `yaml:"no_expect_ids"`
	MatchRegex   string `yaml:"match_regex"`
	NoMatchRegex string `yaml:"no_match_regex"`
}

var firstNumber = regexp.MustCompile(`\d+`)

// loadFTWFiles reads every *.yaml and *.yml test file of the given file
// systems (CRS's own CI globs *.y*ml).
func loadFTWFiles(fsyses ...fs.FS) ([]ftwFile, error) {
	var files []ftwFile
	for _, fsys := range fsyses {
		err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				return nil
			}
			raw, err := fs.ReadFile(fsys, path)
			if err != nil {
				return err
			}
			dec := yaml.NewDecoder(bytes.NewReader(raw))
			dec.KnownFields(true)
			var f ftwFile
			if err := dec.Decode(&f); errors.Is(err, io.EOF) {
				return nil // a file holding only comments
			} else if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if f.RuleID == 0 {
				n, _ := strconv.Atoi(firstNumber.FindString(pathpkg.Base(path)))
				f.RuleID = n
			}
			files = append(files, f)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(files) == 0 {
		return nil, errors.New("no CRS test files found")
	}
	return files, nil
}

// ftwResponse is what came back for one stage's request.
type ftwResponse struct {
	status int
	header http.Header
	raw    []byte
}

var methodsWithBody = regexp.MustCompile(`^POST|PUT|PATCH|DELETE$`) // go-ftw's, precedence and all

// buildFTWRequest renders the input as go-ftw does (see the README): the
// request line, headers sorted by name, each once, and the body, with the
// "autocomplete" headers unless switched off. It also returns the method,
// needed to read the response (HEAD has no body).
func buildFTWRequest(in ftwInput) ([]byte, string, error) {
	method := "GET"
	if in.Method != nil {
		method = *in.Method
	}
	if in.EncodedRequest != "" {
		raw, err := base64.StdEncoding.DecodeString(in.EncodedRequest)
		if err != nil {
			return nil, "", fmt.Errorf("encoded_request: %w", err)
		}
		if m, _, ok := strings.Cut(string(raw), " "); ok {
			method = m
		}
		return raw, method, nil
	}
	if in.Protocol != nil && *in.Protocol != "http" {
		return nil, "", fmt.Errorf("protocol %q is not supported by this runner", *in.Protocol)
	}
	if in.EncodedData != nil {
		return nil, "", errors.New("encoded_data is not supported by this runner")
	}
	uri := "/"
	if in.URI != nil {
		uri = *in.URI
	}
	version := "HTTP/1.1"
	if in.Version != nil {
		version = *in.Version
	}
	autocomplete := true
	if in.AutocompleteHeaders != nil {
		autocomplete = *in.AutocompleteHeaders
	} else if in.StopMagic != nil {
		autocomplete = !*in.StopMagic
	}

	headers := map[string]string{} // go-ftw's Header: one value per exact name
	if in.Headers.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(in.Headers.Content); i += 2 {
			headers[in.Headers.Content[i].Value] = in.Headers.Content[i+1].Value
		}
	}
	addHeader := func(name, value string) { // go-ftw's Header.Add: only when unset or empty
		if headers[name] == "" {
			headers[name] = value
		}
	}

	var data []byte
	if in.Data != nil {
		expanded, err := expandFTWData(*in.Data)
		if err != nil {
			return nil, "", err
		}
		data = []byte(expanded)
	}
	if len(data) > 0 && autocomplete {
		addHeader("Content-Type", "application/x-www-form-urlencoded")
		data = encodeFTWFormData(headers, data)
	}
	if strings.Contains(headers["Content-Type"], "multipart/form-data;") {
		data = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
	}
	if autocomplete {
		addHeader("Connection", "close")
		if len(data) > 0 || methodsWithBody.MatchString(method) {
			addHeader("Content-Length", strconv.Itoa(len(data)))
		}
	}

	var b bytes.Buffer
	if version == "" {
		fmt.Fprintf(&b, "%s %s\r\n", method, uri)
	} else {
		fmt.Fprintf(&b, "%s %s %s\r\n", method, uri, version)
	}
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b.WriteString(name + ": " + headers[name] + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(data)
	return b.Bytes(), method, nil
}

// expandFTWData applies go-ftw's text/template step. The suite uses one
// sprig function, repeat; any other fails the stage loudly.
func expandFTWData(data string) (string, error) {
	if !strings.Contains(data, "{{") {
		return data, nil
	}
	tmpl, err := template.New("data").Funcs(template.FuncMap{
		"repeat": func(count int, s string) string { return strings.Repeat(s, count) },
	}).Parse(data)
	if err != nil {
		return "", fmt.Errorf("data template: %w", err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, nil); err != nil {
		return "", fmt.Errorf("data template: %w", err)
	}
	return b.String(), nil
}

// encodeFTWFormData URL-encodes each key and value of a form body unless it
// looks encoded already (unescaping changes it), as go-ftw does.
func encodeFTWFormData(headers map[string]string, data []byte) []byte {
	if headers["Content-Type"] != "application/x-www-form-urlencoded" {
		return data
	}
	if unescaped, err := url.QueryUnescape(string(data)); unescaped != string(data) || err != nil {
		return data
	}
	var out []string
	for _, token := range strings.Split(string(data), "&") {
		key, value, hasValue := strings.Cut(token, "=")
		if !hasValue {
			out = append(out, url.QueryEscape(token))
			continue
		}
		out = append(out, url.QueryEscape(key)+"="+url.QueryEscape(value))
	}
	return []byte(strings.Join(out, "&"))
}

var (
	triggeredIDPattern     = regexp.MustCompile(`\[(?:id |\\?"id\\?":)\\?"(\d+)\\?"\]`)
	triggeredJSONIDPattern = regexp.MustCompile(`(?:\{|,)\s*"(?:id|ruleId)":\s*"?(\d+)"?`)
)

// judgeStage applies go-ftw's checks in its order: expect_error, status,
// response_contains, then the log checks.
func judgeStage(out ftwOutput, resp *ftwResponse, sendErr error, lines []string) string {
	if out.ExpectError != nil && *out.ExpectError {
		if sendErr != nil {
			return ""
		}
		return "expected a transport error, got a response"
	}
	if sendErr != nil {
		return "transport error: " + sendErr.Error()
	}
	if out.Status != 0 && resp.status != out.Status {
		return fmt.Sprintf("status %d, want %d", resp.status, out.Status)
	}
	if out.ResponseContains != "" {
		re, err := regexp.Compile(out.ResponseContains)
		if err != nil {
			return "response_contains: " + err.Error()
		}
		if !re.Match(resp.raw) {
			return fmt.Sprintf("response does not match %q", out.ResponseContains)
		}
	}

	matchRegex, noMatchRegex := out.Log.MatchRegex, out.Log.NoMatchRegex
	if matchRegex == "" {
		matchRegex = out.LogContains
	}
	if noMatchRegex == "" {
		noMatchRegex = out.NoLogContains
	}
	ids := triggeredIDs(lines)
	for _, want := range out.Log.ExpectIDs {
		if !ids[want] {
			return fmt.Sprintf("rule %d not logged (logged: %v)", want, sortedIDs(ids))
		}
	}
	for _, unwanted := range out.Log.NoExpectIDs {
		if ids[unwanted] {
			return fmt.Sprintf("rule %d logged, must not be (logged: %v)", unwanted, sortedIDs(ids))
		}
	}
	if out.Isolated && (len(out.Log.ExpectIDs) != 1 || len(ids) != 1) {
		return fmt.Sprintf("isolated: want exactly one rule logged, got %v", sortedIDs(ids))
	}
	if matchRegex != "" {
		re, err := regexp.Compile(matchRegex)
		if err != nil {
			return "match_regex: " + err.Error()
		}
		if !slices.ContainsFunc(lines, re.MatchString) {
			return fmt.Sprintf("no log line matches %q (logged: %v)", matchRegex, sortedIDs(ids))
		}
	}
	if noMatchRegex != "" {
		re, err := regexp.Compile(noMatchRegex)
		if err != nil {
			return "no_match_regex: " + err.Error()
		}
		if i := slices.IndexFunc(lines, re.MatchString); i >= 0 {
			return fmt.Sprintf("log line matches %q: %s", noMatchRegex, lines[i])
		}
	}
	return ""
}

func triggeredIDs(lines []string) map[int]bool {
	ids := map[int]bool{}
	for _, pattern := range []*regexp.Regexp{triggeredIDPattern, triggeredJSONIDPattern} {
		for _, l := range lines {
			for _, m := range pattern.FindAllStringSubmatch(l, -1) {
				n, _ := strconv.Atoi(m[1])
				ids[n] = true
			}
		}
		if len(ids) > 0 {
			break
		}
	}
	return ids
}

func sortedIDs(ids map[int]bool) []int {
	out := make([]int, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	sort.Ints(out)
	return out
}
