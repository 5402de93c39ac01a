/**
 * Holds a path pattern — a `routes[].path` (find-my-way syntax: `:id`, `::` for a literal colon,
 * `*`) or an OpenAPI path template (`{id}`) — to the form requests are matched in. A request's path
 * has its unreserved escapes decoded and its dot-segments and `//` resolved (request-target.ts), and
 * the router decodes the rest (keeping `%25`) and reads a `%` in a pattern as a literal percent. So a
 * pattern spelt as a URL or an access log spells the path (`/files/my%20docs/*`, `/internal//*`,
 * `/x/../admin`, `/admin?x=1`, `"/admin "`) passed `config check` and matched no request: a deny
 * route that protected nothing (red team 28). Such a pattern is refused, naming the one to write.
 *
 * Also refused: a regular expression on a route parameter that can backtrack (find-my-way's
 * safe-regex2 check passes `(a|a)*b`, which V8 runs with exponential backtracking on the request
 * path, holding the event loop; `^\d+$`, `^[^/:]+` pass), a parameter running into `::`
 * (`:id::cancel` is one parameter to the router) and a parameter named twice (`/a/{b}/{b}`: only
 * the last segment was bound and validated).
 */
import { removeDotSegments } from './request-target.js';

/** `route`: sidecar.yaml's routes[].path; `template`: an OpenAPI document's path template. */
export type PatternSyntax = 'route' | 'template';

/**
 * The parameter syntax of each: `::` (a literal colon), `:name` — which runs to "(", "-", ".", "/"
 * or the end, as find-my-way reads it, and is a regular expression when "(" follows — and `*`; or
 * `{name}`.
 */
const TOKENS: Record<PatternSyntax, RegExp> = {
  route: /::|:([^/(.-]*)(\()?|\*/g,
  template: /\{([^{}/]*)\}/g,
};
/** Characters a decoded literal cannot be written as, being the pattern's own syntax or a query or fragment. */
const UNWRITABLE: Record<PatternSyntax, RegExp> = { route: /[*?#]/, template: /[{}*?#]/ };
/** A run of escapes outside the parameters (which the alternatives consume first where one starts). */
const LITERAL_ESCAPES: Record<PatternSyntax, RegExp> = {
  route: /(?:%[0-9A-Fa-f]{2})+|::|:[^/(.-]*|\*/g,
  template: /(?:%[0-9A-Fa-f]{2})+|\{[^{}/]*\}/g,
};
/** What decoding, dot-segments or duplicate slashes could change: anything else is already in form. */
const NEEDS_WORK = /%[0-9A-Fa-f]{2}|\/\.|\/\//;
/** find-my-way's optional parameter (`/users/:id?`), registered as two routes; not supported here. */
const OPTIONAL_PARAMETER = /\/:([^/()?]*)\?/;
const LONE_SURROGATE = /\p{Cs}/u;
// eslint-disable-next-line no-control-regex -- control characters are what no request path holds
const CONTROL = /[\x00-\x1f\x7f]/;
const REGEX_PARAMETER_WHY =
  'only one that runs in linear time is accepted (no repetition that can overlap or nest: `^\\d+$`, `^[^/:]+` pass; one that backtracks can hold every request for seconds): simplify it, or match the segment with the parameter alone and check its value in the backend or the OpenAPI document';

/** The source of the regular expression whose "(" is at `open` (up to its balanced ")"), or undefined when it does not close. */
function regexSourceAt(pattern: string, open: number): string | undefined {
  let depth = 0;
  for (let i = open; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i++;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return pattern.slice(open + 1, i);
  }
  return undefined;
}

/**
 * What is wrong with `pattern` (one line naming the fix), or undefined when requests can match it as
 * written. `linearRegex`: whether a route parameter's regular expression runs in linear time
 * (openapi/backtrack-linear.ts' check, as for the `(^[^/:]+)` an OpenAPI `{id}:cancel` is routed
 * with); without it, none is accepted.
 */
export function patternProblem(
  pattern: string,
  syntax: PatternSyntax,
  linearRegex?: (source: string) => boolean,
  parametersChecked = false,
): string | undefined {
  const quoted = JSON.stringify(pattern);
  const never = (why: string) => `${quoted} is never matched: ${why}`;
  if (LONE_SURROGATE.test(pattern)) return `${quoted} is not valid Unicode text`;
  const names = new Set<string>();
  let bare = ''; // the pattern without its parameters' regular expressions, for the checks below
  let copied = 0;
  const tokens = new RegExp(TOKENS[syntax]);
  for (let m = parametersChecked ? null : tokens.exec(pattern); m !== null; m = tokens.exec(pattern)) {
    const [, name, regex] = m;
    if (name === undefined) continue; // `::` or `*`
    if (syntax === 'route' && name.includes(':')) {
      // find-my-way ends a name only at "(", "-", ".", "/" or the end: `:id::cancel` is one parameter
      // named `id::cancel`, matching `/v1/jobs/5`, `/v1/jobs/5:delete`, … (review rt28-2, F2).
      const [own = '', ...rest] = name.split('::');
      return `${quoted}: ":${name}" is one parameter to the router (a name runs to "(", "-", ".", "/" or the end), so it matches any segment: write ":${own}(^[^/:]+)::${rest.join('::')}" for a parameter followed by a literal ":"`;
    }
    if (regex !== undefined) {
      const source = regexSourceAt(pattern, m.index + m[0].length - 1);
      if (source === undefined || linearRegex === undefined || !linearRegex(source))
        return `${quoted} has a regular expression on ":${name}" that can backtrack: ${REGEX_PARAMETER_WHY}`;
      const open = m.index + m[0].length - 1;
      bare += pattern.slice(copied, open);
      copied = tokens.lastIndex = open + source.length + 2; // past its ")": its text is no pattern syntax
    }
    if (names.has(name))
      return syntax === 'route' ? `${quoted}: parameter ":${name}" appears twice` : `path parameter "{${name}}" appears twice`;
    names.add(name);
  }
  // The rest is about the literal parts: checked without the (linear) regular expressions.
  if (copied > 0) return patternProblem(bare + pattern.slice(copied), syntax, undefined, true);
  const optional = syntax === 'route' ? OPTIONAL_PARAMETER.exec(pattern) : null;
  if (optional)
    return `${quoted}: optional parameters (":${optional[1] ?? ''}?") are not supported: declare the path with and without the parameter`;
  const query = pattern.search(/[?#]/);
  if (query !== -1)
    return never(
      pattern[query] === '?'
        ? `"?" starts the query, which is not part of the path: remove ${JSON.stringify(pattern.slice(query))}`
        : `"#" starts a fragment, which requests do not send: remove ${JSON.stringify(pattern.slice(query))}`,
    );
  if (/^\s|\s$/.test(pattern))
    return never(`it ${/^\s/.test(pattern) ? 'starts' : 'ends'} in white space (a quoting slip?): write ${JSON.stringify(pattern.trim())}`);
  if (pattern.includes('\\')) return never('requests with a "\\" are refused');
  if (CONTROL.test(pattern)) return never('requests with a control character are refused');

  if (!NEEDS_WORK.test(pattern)) return undefined;

  // Literal parts decoded (as the router reads a request) and written back in the pattern's syntax; parameters as they are.
  let decoded = false;
  let problem: string | undefined;
  let unwritable: string | undefined;
  const decodedText = pattern.replace(LITERAL_ESCAPES[syntax], (run) => {
    if (run[0] !== '%') return run; // a parameter, `::` or `*`
    let chars: string;
    try {
      chars = decodeURIComponent(run);
    } catch {
      problem ??= never(`${JSON.stringify(run)} is not UTF-8, and requests are matched decoded`);
      return run;
    }
    if (chars.includes('/')) problem ??= never('requests with an encoded "/" (%2F) are refused');
    else if (chars.includes('\\')) problem ??= never('requests with an encoded "\\" (%5C) are refused');
    else if (CONTROL.test(chars)) problem ??= never('requests with an encoded control character are refused');
    unwritable ??= UNWRITABLE[syntax].exec(chars)?.[0];
    decoded = true;
    return chars;
  });
  if (problem !== undefined) return problem;
  if (unwritable !== undefined)
    return never(
      `requests are matched decoded (${JSON.stringify(decodedText)}), and a literal "${unwritable}" cannot be written in a ${syntax === 'route' ? 'pattern' : 'template'}`,
    );
  // A decoded ":" is a literal one, which a route pattern spells "::" (raw colons are all parameters or "::").
  const written =
    decoded && syntax === 'route'
      ? pattern.replace(LITERAL_ESCAPES.route, (run) => (run[0] === '%' ? decodeURIComponent(run).replaceAll(':', '::') : run))
      : decodedText;
  // Parameters hold no "/" and a segment holding one is no dot-segment: resolving them here is resolving the paths they match.
  const normal = removeDotSegments(written);
  if (normal === undefined) return never('its ".." climbs above the root (such requests are refused)');
  if (normal === pattern) return undefined;
  const how =
    normal === written
      ? 'requests are matched decoded'
      : decoded
        ? 'requests are matched decoded, with "." and ".." segments resolved and "//" collapsed'
        : 'requests are matched with "." and ".." segments resolved and "//" collapsed';
  // What decoding gave may not be writable either (`%2541` is "%41", `%20` at the end white space).
  if (patternProblem(normal, syntax) !== undefined)
    return never(`requests are matched decoded (${JSON.stringify(decodedText)}), and no pattern can name that path`);
  return never(`${how}; write ${JSON.stringify(normal)}`);
}
