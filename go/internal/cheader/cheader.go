// Package cheader extracts the constants of a Linux uapi header: the object
// macros (#define NAME value) and the enumerators of every enum, with C's
// implicit numbering.
//
// It understands exactly what uapi headers of this kind use: block and line
// comments, include guards, string literals, integer literals with U/L
// suffixes, and integer constant expressions over earlier names with
// parentheses and the operators ~ ! * / % + - << >> & ^ | (unary and binary),
// evaluated in int64; and a 64-bit unsigned literal above 2^63 - 1 (a salt)
// as the whole value of a #define, which no expression may then use.
// Anything else is an error rather than a guess, so that a header change the
// parser does not understand makes the drift test fail loudly.
package cheader

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Kind tells what a constant's value is.
type Kind int

// Kinds of constants.
const (
	Int Kind = iota
	String
)

// A Const is one named constant of the header.
type Const struct {
	Name  string
	Kind  Kind
	Int   int64  // the value when Kind is Int (the bits, with Uint64)
	Str   string // the value when Kind is String
	Enum  string // the enum's tag for an enumerator, "" for a #define
	Line  int    // 1-based line of the definition
	IsDef bool   // true for #define, false for an enumerator
	// Uint64 tells a #define whose value is an unsigned literal above
	// 2^63 - 1 (0x9fb21c651e98df25ULL): Int holds its bits, and Value
	// returns it.
	Uint64 bool
	// Doc is the text of the comment on the lines just above the
	// definition, if those lines hold nothing else: "/* text */" or a run
	// of "// text" lines, without the comment markers and with the lines
	// joined by spaces.
	Doc string
}

// Parse returns every constant of src in the order of definition.
func Parse(src string) ([]Const, error) {
	p := &parser{vals: map[string]Const{}, docs: map[int]string{}}
	if err := p.parse(src); err != nil {
		return nil, err
	}
	return p.out, nil
}

type parser struct {
	out  []Const
	vals map[string]Const
	// docs maps the last line of a comment that stands alone on its lines
	// to the comment's text; see Const.Doc.
	docs map[int]string
}

func (p *parser) add(c Const) error {
	if _, dup := p.vals[c.Name]; dup {
		return fmt.Errorf("line %d: %s defined twice", c.Line, c.Name)
	}
	c.Doc = p.docs[c.Line-1]
	p.vals[c.Name] = c
	p.out = append(p.out, c)
	return nil
}

// A comment is the text of one comment and the lines it spans.
type comment struct {
	first, last int // 1-based
	text        string
}

// stripComments replaces comments by spaces, keeping newlines so that line
// numbers stay right, and leaves string literals alone. It also returns
// the comments, in order.
func stripComments(src string) (string, []comment, error) {
	var (
		b        strings.Builder
		comments []comment
	)
	line := 1
	for i := 0; i < len(src); {
		switch {
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return "", nil, fmt.Errorf("unterminated comment")
			}
			body := src[i+2 : i+2+end]
			comments = append(comments, comment{first: line, last: line + strings.Count(body, "\n"), text: commentText(body)})
			for _, r := range body {
				if r == '\n' {
					b.WriteByte('\n')
					line++
				}
			}
			b.WriteByte(' ')
			i += 2 + end + 2
		case strings.HasPrefix(src[i:], "//"):
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			comments = append(comments, comment{first: line, last: line, text: commentText(src[i+2 : i+end])})
			i += end
		case src[i] == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				if j < len(src) && src[j] == '\n' {
					return "", nil, fmt.Errorf("newline in string literal")
				}
				j++
			}
			if j >= len(src) {
				return "", nil, fmt.Errorf("unterminated string literal")
			}
			b.WriteString(src[i : j+1])
			i = j + 1
		default:
			if src[i] == '\n' {
				line++
			}
			b.WriteByte(src[i])
			i++
		}
	}
	return b.String(), comments, nil
}

// commentText returns the words of a comment's body, without the leading
// "*" of block comment lines, joined by single spaces.
func commentText(body string) string {
	var words []string
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimPrefix(strings.TrimSpace(l), "*")
		words = append(words, strings.Fields(l)...)
	}
	return strings.Join(words, " ")
}

// collectDocs fills p.docs with the comments that have their lines to
// themselves in stripped, the source without comments. A run of such
// comments on consecutive lines makes one text.
func (p *parser) collectDocs(stripped string, comments []comment) {
	lines := strings.Split(stripped, "\n")
	alone := func(c comment) bool {
		for l := c.first; l <= c.last; l++ {
			if l-1 >= len(lines) || strings.TrimSpace(lines[l-1]) != "" {
				return false
			}
		}
		return true
	}
	prevLast := -1
	for _, c := range comments {
		if !alone(c) {
			prevLast = -1
			continue
		}
		if text, ok := p.docs[prevLast]; ok && c.first == prevLast+1 {
			delete(p.docs, prevLast)
			c.text = strings.TrimSpace(text + " " + c.text)
		}
		p.docs[c.last] = c.text
		prevLast = c.last
	}
}

func (p *parser) parse(src string) error {
	src, comments, err := stripComments(src)
	if err != nil {
		return err
	}
	p.collectDocs(src, comments)
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		lineNo := i + 1
		// Join continuation lines.
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
		}
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			if err := p.directive(strings.TrimSpace(line[1:]), lineNo); err != nil {
				return err
			}
		case strings.HasPrefix(line, "enum"):
			// Collect the whole enum body up to the closing "};".
			body := line
			for !strings.Contains(body, "}") {
				i++
				if i >= len(lines) {
					return fmt.Errorf("line %d: unterminated enum", lineNo)
				}
				body += "\n" + lines[i]
			}
			if err := p.enum(body, lineNo); err != nil {
				return err
			}
		default:
			return fmt.Errorf("line %d: cannot parse %q", lineNo, line)
		}
	}
	return nil
}

func (p *parser) directive(d string, line int) error {
	word, rest := cutSpace(d)
	switch word {
	case "ifndef", "ifdef", "endif", "include", "if", "else":
		return nil
	case "define":
	default:
		return fmt.Errorf("line %d: unsupported directive #%s", line, word)
	}
	name, value := cutSpace(rest)
	if strings.ContainsAny(name, "(") {
		return fmt.Errorf("line %d: function-like macro %s", line, name)
	}
	if value == "" {
		// An include guard or a flag macro without a value.
		return nil
	}
	c := Const{Name: name, Line: line, IsDef: true}
	if strings.HasPrefix(value, `"`) {
		s, err := strconv.Unquote(value)
		if err != nil {
			return fmt.Errorf("line %d: %s: bad string %s", line, name, value)
		}
		c.Kind, c.Str = String, s
		return p.add(c)
	}
	if u, ok := bigLiteral(value); ok {
		c.Kind, c.Int, c.Uint64 = Int, int64(u), true
		return p.add(c)
	}
	v, err := p.eval(value)
	if err != nil {
		return fmt.Errorf("line %d: %s: %v", line, name, err)
	}
	c.Kind, c.Int = Int, v
	return p.add(c)
}

// bigLiteral reads value as a single integer literal, in parentheses or
// not, above 2^63 - 1 and at most 2^64 - 1; ok is false for anything else.
func bigLiteral(value string) (u uint64, ok bool) {
	lit := strings.TrimSpace(value)
	for strings.HasPrefix(lit, "(") && strings.HasSuffix(lit, ")") {
		lit = strings.TrimSpace(lit[1 : len(lit)-1])
	}
	if lit == "" || lit[0] < '0' || lit[0] > '9' {
		return 0, false
	}
	u, err := parseUint(lit)
	if err != nil || u <= 1<<63-1 {
		return 0, false
	}
	return u, true
}

// Value returns the constant's integer value as C has it: an int64, or a
// uint64 for Uint64.
func (c Const) Value() any {
	if c.Uint64 {
		return uint64(c.Int)
	}
	return c.Int
}

// cutSpace splits s at its first run of white space.
func cutSpace(s string) (head, tail string) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

func (p *parser) enum(body string, line int) error {
	open := strings.IndexByte(body, '{')
	closing := strings.IndexByte(body, '}')
	if open < 0 || closing < open {
		return fmt.Errorf("line %d: malformed enum", line)
	}
	tag := strings.TrimSpace(strings.TrimPrefix(body[:open], "enum"))
	if tail := strings.TrimSpace(body[closing+1:]); tail != ";" {
		return fmt.Errorf("line %d: enum %s: expected \"};\", got %q", line, tag, "}"+tail)
	}
	var next int64
	inner := body[open+1 : closing]
	offset := 0
	for _, raw := range splitTop(inner) {
		itemLine := line + strings.Count(body[:open+1], "\n") +
			strings.Count(inner[:offset], "\n") + strings.Count(raw, "\n") -
			strings.Count(strings.TrimLeft(raw, " \t\r\n"), "\n")
		offset += len(raw) + 1
		item := strings.TrimSpace(raw)
		if item == "" {
			continue
		}
		name, expr, hasValue := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !isIdent(name) {
			return fmt.Errorf("line %d: enum %s: bad enumerator %q", line, tag, item)
		}
		v := next
		if hasValue {
			var err error
			if v, err = p.eval(expr); err != nil {
				return fmt.Errorf("line %d: enum %s: %s: %v", itemLine, tag, name, err)
			}
		}
		if err := p.add(Const{Name: name, Kind: Int, Int: v, Enum: tag, Line: itemLine}); err != nil {
			return err
		}
		next = v + 1
	}
	return nil
}

// splitTop splits an enum body on the commas that are not inside
// parentheses.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r != '_' && !unicode.IsLetter(r) && (i == 0 || !unicode.IsDigit(r)) {
			return false
		}
	}
	return true
}

// eval evaluates an integer constant expression.
func (p *parser) eval(expr string) (int64, error) {
	toks, err := tokenize(expr)
	if err != nil {
		return 0, err
	}
	e := &evaluator{toks: toks, p: p}
	v, err := e.binary(0)
	if err != nil {
		return 0, err
	}
	if e.pos != len(e.toks) {
		return 0, fmt.Errorf("unexpected %q in %q", e.toks[e.pos], expr)
	}
	return v, nil
}

func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '<' || c == '>':
			if i+1 >= len(s) || s[i+1] != c {
				return nil, fmt.Errorf("unsupported operator %q", c)
			}
			toks = append(toks, s[i:i+2])
			i += 2
		case strings.IndexByte("()~!*/%+-&^|", c) >= 0:
			toks = append(toks, string(c))
			i++
		case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q", c)
		}
	}
	return toks, nil
}

type evaluator struct {
	toks []string
	pos  int
	p    *parser
}

var precedence = map[string]int{
	"|": 1, "^": 2, "&": 3, "<<": 4, ">>": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6,
}

func (e *evaluator) peek() string {
	if e.pos < len(e.toks) {
		return e.toks[e.pos]
	}
	return ""
}

// binary parses by precedence climbing the operators whose precedence is
// above min.
func (e *evaluator) binary(min int) (int64, error) {
	lhs, err := e.unary()
	if err != nil {
		return 0, err
	}
	for {
		op := e.peek()
		prec, ok := precedence[op]
		if !ok || prec <= min {
			return lhs, nil
		}
		e.pos++
		rhs, err := e.binary(prec)
		if err != nil {
			return 0, err
		}
		switch op {
		case "|":
			lhs |= rhs
		case "^":
			lhs ^= rhs
		case "&":
			lhs &= rhs
		case "<<":
			if rhs < 0 || rhs > 63 {
				return 0, fmt.Errorf("shift by %d", rhs)
			}
			lhs <<= rhs
		case ">>":
			if rhs < 0 || rhs > 63 {
				return 0, fmt.Errorf("shift by %d", rhs)
			}
			lhs >>= rhs
		case "+":
			lhs += rhs
		case "-":
			lhs -= rhs
		case "*":
			lhs *= rhs
		case "/", "%":
			if rhs == 0 {
				return 0, fmt.Errorf("division by zero")
			}
			if op == "/" {
				lhs /= rhs
			} else {
				lhs %= rhs
			}
		}
	}
}

func (e *evaluator) unary() (int64, error) {
	tok := e.peek()
	if tok == "" {
		return 0, fmt.Errorf("unexpected end of expression")
	}
	e.pos++
	switch tok {
	case "(":
		v, err := e.binary(0)
		if err != nil {
			return 0, err
		}
		if e.peek() != ")" {
			return 0, fmt.Errorf("missing )")
		}
		e.pos++
		return v, nil
	case "-", "+", "~", "!":
		v, err := e.unary()
		if err != nil {
			return 0, err
		}
		switch tok {
		case "-":
			return -v, nil
		case "~":
			return ^v, nil
		case "!":
			if v == 0 {
				return 1, nil
			}
			return 0, nil
		}
		return v, nil
	}
	if tok[0] >= '0' && tok[0] <= '9' {
		return parseInt(tok)
	}
	if c, ok := e.p.vals[tok]; ok {
		if c.Kind != Int {
			return 0, fmt.Errorf("%s is not an integer", tok)
		}
		if c.Uint64 {
			return 0, fmt.Errorf("%s is above 2^63 - 1: no expression may use it", tok)
		}
		return c.Int, nil
	}
	return 0, fmt.Errorf("unknown name %q", tok)
}

func parseInt(tok string) (int64, error) {
	v, err := parseUint(tok)
	if err != nil || v > 1<<63-1 {
		return 0, fmt.Errorf("bad integer literal %q", tok)
	}
	return int64(v), nil
}

// parseUint reads a C integer literal, decimal, octal or hex, with U and L
// suffixes, up to 2^64 - 1.
func parseUint(tok string) (uint64, error) {
	lit := strings.TrimRight(tok, "uUlL")
	base := 10
	switch {
	case strings.HasPrefix(lit, "0x") || strings.HasPrefix(lit, "0X"):
		base, lit = 16, lit[2:]
	case len(lit) > 1 && lit[0] == '0':
		base, lit = 8, lit[1:]
	}
	return strconv.ParseUint(lit, base, 64)
}

// GoName maps the C name of a constant to its exported Go name: prefix is
// removed and the words between underscores are capitalised, so that
// INSANE_DEVICE_A_IFNAME becomes DeviceAIfname. Leading underscores are
// dropped (__INSANE_DEVICE_F_ALL becomes DeviceFAll), except that the
// "__X_MAX" enum sentinels map to "": they are only there to define X_MAX.
// A name without the prefix is an error.
func GoName(cname, prefix string) (string, error) {
	trimmed := strings.TrimLeft(cname, "_")
	if trimmed != cname && strings.HasSuffix(cname, "_MAX") {
		return "", nil
	}
	rest, ok := strings.CutPrefix(trimmed, prefix)
	if !ok || rest == "" {
		return "", fmt.Errorf("%s does not start with %s", cname, prefix)
	}
	var b strings.Builder
	for _, w := range strings.Split(rest, "_") {
		if w == "" {
			return "", fmt.Errorf("%s: empty word", cname)
		}
		b.WriteString(strings.ToUpper(w[:1]))
		b.WriteString(strings.ToLower(w[1:]))
	}
	return b.String(), nil
}
