package chattemplate

import (
	"encoding/json"
	"fmt"
	"testing"
)

// snippets are small templates on the corners where a Go engine and
// Python's Jinja part easily: whitespace control, Python's operators and
// printing, string escapes, filters, tests and loop variables. Each must
// render as transformers renders it, or fail where it fails.
var snippets = []string{
	"{{ none }}|{{ true }}|{{ 1.0 }}|{{ 1e20 }}|{{ 0.00001 }}|{{ 3 / 2 }}|{{ 2 ** 3 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 7.5 // 2 }}|{{ loop is defined }}",
	"{{ 'a' ~ none ~ 1 ~ 2.5 ~ true }}",
	"{{ 'x' + none }}",
	"{{ 'x' + undefined_name }}",
	"{{ undefined_name }}|{{ undefined_name is defined }}|{{ undefined_name | default('d') }}",
	"{{ 1 / 0 }}",
	"{{ '\\u00e9\\x41\\101\\t|\\q' }}",
	"{{ 'ab' * 3 }}{{ 'ab' * -1 }}{{ [1] * 2 }}",
	"  {% if true %}\n  yes\n  {% endif %}\n  {%- if true %} tight {% endif -%}  \n end",
	"{%+ if true %}x{% endif %}\n{# c #}\n  {#- c -#}  y\n",
	"{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{{ loop.index }}{{ loop.first }}{% endfor %}",
	"{% for x in [3, 1, 2] | sort %}{{ loop.revindex }}{{ loop.length }}{{ loop.cycle('a', 'b') }}{% endfor %}",
	"{% set ns = namespace(n=0, s='') %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% set ns.s = ns.s + m.role[0] %}{% endfor %}{{ ns.n }}{{ ns.s }}",
	"{{ messages | map(attribute='role') | join('/') }}|{{ messages | selectattr('role', 'equalto', 'user') | list | length }}|{{ messages[0] is mapping }}|{{ messages is sequence }}",
	"{{ '  hi  ' | trim }}|{{ 'Hello World' | lower }}|{{ 'hello world' | title }}|{{ 'a-b-c'.split('-') }}|{{ 'abc'.startswith('a') }}|{{ ' x '.strip() }}|{{ 'aXbX'.replace('X', 'y') }}",
	"{{ {'b': 2, 'a': [1.5, none, 'é\"']} | tojson }}|{{ [1, 2] | tojson(indent=2) }}|{{ {} | tojson(indent=2) }}|{{ 'é' | tojson(ensure_ascii=true) }}|{{ {'b': 1, 'a': 2} | tojson(sort_keys=true, separators=(',', ':')) }}",
	"{{ 'x\\ny' | tojson }}|{{ '</script>&' | tojson }}|{{ 1.0 | tojson }}|{{ 100000000000000000.0 | tojson }}",
	"{{ messages[-1]['content'][1:4] }}|{{ messages | length }}|{{ messages[5] is defined }}",
	"{% macro f(x, y='d') %}[{{ x }}{{ y }}]{% endmacro %}{{ f(1) }}{{ f(2, y='e') }}",
	"{% set x %}block {{ 1 + 1 }}{% endset %}{{ x | upper }}",
	"{{ raise_exception('custom failure: ' ~ messages | length) }}",
	"{{ (messages | first).role }}|{{ (messages | last).content }}|{{ [3, 1] | max }}|{{ [1, 2, 3] | sum }}|{{ 'a' in 'cat' }}|{{ 2 in [1, 2] }}",
	"{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%-d %B') }}",
	"{% if messages[0].content is string and messages[0].content | length > 3 %}long{% else %}short{% endif %}",
	"{{ range(3) | list }}|{{ range(1, 10, 3) | list }}|{{ {'k': 'v'}.get('k') }}{{ {'k': 'v'}.get('z', 'dflt') }}",
	"{{ 'x' if none else 'y' }}|{{ none is none }}|{{ 0 is number }}|{{ 'a' is string }}|{{ not [] }}",
	"{% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }};{% endfor %}{% for k, v in {'z': 1, 'y': 2}.items() %}{{ k }}{{ v }}{% endfor %}",
	"{% for i in range(100001) %}{% endfor %}",
	"{% for x in none %}{% endfor %}",
	"{{ 'a' in none }}",
	"{% for x in undefined_name %}{% endfor %}{{ 'a' in undefined_name }}",
	"{{ 'one \\\ntwo' }}",
	"{{ undefined_name | length }}|{{ '' | length }}|{{ {} | count }}",
	"{{ none | length }}",
	"{{ 3 | length }}",
	"{% if messages[0].missing | length > 0 %}y{% endif %}{% if none | length > 0 %}n{% endif %}",
	"{{ none[0] }}|{{ undefined_name.x is defined }}",
	"{{ none[0]['text'] }}",
	"{{ undefined_name.x }}",
	"{{ undefined_name['x'] }}",
	"{{ messages[0].missing.deeper }}",
	"{% set l = [1] %}{% set _ = l.append(2) %}{{ l }}",
	"{% set l = [1, 2] %}{{ l.pop() }}{{ l }}",
	"{% set d = {'a': 1} %}{% set _ = d.update({'b': 2}) %}{{ d }}",
	"{% set d = {'a': 1} %}{{ d.pop('a') }}{{ d }}",
	// map, select, reject, selectattr, rejectattr, items, unique and batch
	// return generators, reverse a reverse iterator: lazy, iterable once,
	// with no length, no last item and no JSON form.
	"{{ messages | map(attribute='role') }}|{{ messages | selectattr('role') }}|{{ messages | rejectattr('role') }}|{{ [1] | select }}|{{ [1] | reject }}",
	"{{ {'a': 1} | items }}|{{ [1] | unique }}|{{ [1] | batch(2) }}|{{ [1] | reverse }}|{{ {'a': 1} | reverse }}|{{ 'ab' | reverse }}|{{ [1] | map('string') | reverse }}",
	"{{ messages | map(attribute='role') | tojson }}",
	"{{ [1] | reverse | tojson }}",
	"{{ {'a': 1} | items | tojson }}",
	"{{ [messages | selectattr('role')] | tojson }}",
	"{{ [1] | map('string') | length }}",
	"{{ messages | rejectattr('role', 'equalto', 'user') | count }}",
	"{{ [1] | map('string') | last }}",
	"{{ [1] | map('int') + [2] }}",
	"{% set g = [1, 2] | map('string') %}{% for x in g %}{{ x }}{% endfor %}|{% for x in g %}{{ x }}{% else %}empty{% endfor %}|{{ g | list }}",
	"{% set g = [1, 2, 3] | map('string') %}{{ g | first }}{{ g | list }}|{% set g = [1, 2, 3] | map('int') %}{{ 2 in g }}{{ g | list }}|{{ '1' in [1] | map('string') }}",
	"{{ [1] | map('string') is iterable }}{{ [1] | map('string') is sequence }}{{ [1] | map('string') is mapping }}{{ [] | map('string') is true }}{{ not ([] | map('string')) }}{{ [1] | map('string') == [1] | map('string') }}{% set g = [] | select %}{{ g == g }}{% if g %}T{% endif %}",
	"{{ ([1] | map('string'))[0] }}|{{ ([1] | map('string')).x }}|{{ ([1] | map('string')) | default('d') }}|{{ [1] | map('int') is none }}",
	"{{ [3, 1] | map('int') | sort }}|{{ [3, 1] | map('int') | sum }}|{{ [3, 1] | map('int') | max }}|{{ [3, 1] | map('int') | min }}|{{ [3, 1] | map('int') | join(',') }}|{{ [3, 3] | map('int') | unique | list }}|{{ ([1] | map('int')) ~ '' }}|{{ [1] | map('int') | string }}",
	"{% for a in [1, 2] | map('int') %}{{ loop.length }}{{ loop.last }}{{ loop.revindex }}{% endfor %}",
	"{{ 3 | map('int') }}|{{ 5 | items }}|{{ [1] | map('nofilter') }}",
	// sort, unique, max and min ignore case unless case_sensitive, take
	// an attribute (dotted; sort's several, comma-separated), and unique
	// tells values apart as a Python set does.
	"{{ ['b', 'A', 'a', 'B'] | sort }}|{{ ['b', 'A', 'a', 'B'] | sort(case_sensitive=true) }}|{{ ['b', 'A', 'a'] | sort(reverse=true) }}|{{ ['a', 'B'] | max }}|{{ ['a', 'B'] | min }}|{{ ['a', 'B'] | max(case_sensitive=true) }}",
	"{{ ['a', 'A', 'b'] | unique | list }}|{{ ['a', 'A', 'b'] | unique(case_sensitive=true) | list }}|{{ [1, 1.0, true, '1', 2] | unique | list }}",
	"{{ [{'n': 'b', 'k': 2}, {'n': 'a', 'k': 2}, {'n': 'c', 'k': 1}] | sort(attribute='k,n') | map(attribute='n') | join }}|{{ [{'x': [3, 'z']}, {'x': [1, 'y']}] | sort(attribute='x.0') | tojson }}|{{ [{'a': 'X'}, {'a': 'y'}] | max(attribute='a') | tojson }}|{{ messages | unique(attribute='role') | map(attribute='role') | join(',') }}",
	"{{ 3 | map('int') | list }}",
	"{{ 5 | items | list }}",
	"{{ none | map('int') | list }}{{ 0 | select | list }}{{ 'ab' | map('upper') | list }}{{ {'a': 1} | map('upper') | list }}{{ ['a', 'b'] | map('replace', 'a', 'c') | join }}",
	"{{ [1, 2] | reverse | list }}{{ ([1, 2] | reverse)[0] }}{{ {'a': 1, 'b': 2} | reverse | list }}{{ [1, 2, 3] | batch(2) | list }}{{ [1, 2, 3] | batch(2, 'x') | list }}{{ [1, 2] | batch(0) | list }}{{ [1, 2] | batch(-1) | list }}{{ [] | batch(2) | list }}",
	"{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | first }}|{{ messages | rejectattr('role', 'in', ['system']) | list | length }}|{{ messages | map(attribute='nope', default='d') | join }}|{% for k, v in {'a': 1} | items %}{{ k }}={{ v }}{% endfor %}",
}

// Where golem's engine knowingly parts from Python's Jinja it fails with
// a clear error, never a different prompt.
var unsupported = []string{
	"{{ '%s-%d' % ('a', 3) }}", // Python's % string formatting
}

func TestSnippetsMatchTransformers(t *testing.T) {
	msgs := json.RawMessage(`[{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "Hi!"}]`)
	var cases []oracleCase
	for i, s := range snippets {
		cases = append(cases, oracleCase{Name: fmt.Sprintf("snippet %d %q", i, s), Template: s, Messages: msgs, Date: "2026-12-06"})
	}
	compare(t, cases)
}

func TestUnsupportedFailsClearly(t *testing.T) {
	for _, s := range unsupported {
		tmpl, err := Parse(s)
		if err == nil {
			_, err = tmpl.Render(t.Context(), Input{Messages: json.RawMessage(`[]`)})
		}
		if err == nil {
			t.Errorf("%q: rendered, want an error", s)
		}
	}
}
