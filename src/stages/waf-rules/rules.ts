/**
 * Warden's WAF ruleset for libddwaf (@datadog/native-appsec), owned by this project. Every rule
 * reads one input: `warden.values`, the request's parameter names and values flattened into
 * strings by src/threats/waf-input.ts (so names are inspected like values, and nothing hides in
 * depth or container size). `paranoia` selects rules: level 1 catches clear attacks with few false
 * positives; levels 2 and 3 add broader patterns.
 */
import type { AttackClass, WafRuleset } from '../../threats/waf.js';
import { WAF_VALUES } from '../../threats/waf-input.js';
import { holdsEtcOnceShellRemoved } from './shell-removed.js';

export interface WafRule {
  id: string;
  /** The event class: warden.input.<class>. */
  class: AttackClass;
  paranoia: 1 | 2 | 3;
  operator: { is_sqli: true } | { is_xss: true } | { regex: string };
  /** libddwaf transformers applied before the operator (decoding an evasion the backend would undo). */
  transformers?: Transformed;
}

/**
 * A transformer costs on every string its rule reads (libddwaf copies and scans each one) but
 * changes few of them. So a transformed rule reads its own input, a lane, where the engine puts
 * only the strings that `admits`: a necessary condition, cheap in JS, for the transformed string
 * to match. When the transformers leave every other string as it is (`identityOtherwise`), the
 * rule's pattern also runs untransformed on all strings, with its class's other patterns.
 */
export interface Transformed {
  readonly names: readonly string[];
  readonly admits: (text: string) => boolean;
  readonly identityOtherwise: boolean;
}

/** HTML entities need a `&`, JavaScript escapes a `\`; without them both decoders change nothing. */
const ENTITY_AND_JS_DECODE: Transformed = {
  names: ['htmlEntityDecode', 'jsDecode'],
  admits: (text) => text.includes('&') || text.includes('\\'),
  identityOtherwise: true,
};
/** libddwaf's normalisation rewrites only code points above U+007F (the lane also takes control characters). */
const NON_ASCII = /[^\t\n\r\x20-\x7e]/;
const UNICODE_NORMALIZE: Transformed = { names: ['unicode_normalize'], admits: (text) => NON_ASCII.test(text), identityOtherwise: true };
/**
 * shell_unescape deletes `\ " ' ^`, turns `, ;` and whitespace runs into one space and drops a
 * space before `/` or `(`: a string it turns into one holding `/etc/` holds it once all of those
 * are deleted. (It also lowercases everything, so it is never the identity.)
 */
const SHELL_UNESCAPE_ETC: Transformed = { names: ['shell_unescape'], admits: holdsEtcOnceShellRemoved, identityOtherwise: false };

const ci = (regex: string) => ({ regex });

/** Commands an injected shell line runs (RE2 syntax: no lookaround). */
const SHELL_WORDS =
  '(?:/(?:usr/)?s?bin/)?(?:cat|id|whoami|uname|ls|dir|printf|wget|curl|nc|ncat|netcat|bash|sh|zsh|powershell(?:\\.exe)?|pwsh|cmd(?:\\.exe)?|ping|nslookup|python[23]?|perl|ruby|php|rm|chmod|echo|certutil|bitsadmin|sleep|telnet|ifconfig|ipconfig|net\\s+user|tftp|mkfifo|tar)';
/** A shell command as the word being run: followed by a space, an operator or the end — not `id:`. */
const SHELL_COMMAND = `${SHELL_WORDS}(?:$|[\\s;|&<>\`)$])`;
/** Commands that are an attack even without arguments inside backticks (`id` alone is Markdown). */
const BARE_COMMANDS = '(?:whoami|uname|ifconfig|ipconfig|hostname)';

export const WAF_RULES: readonly WafRule[] = [
  // SQL injection: libinjection's tokenizer, plus what it does not classify (time-based functions).
  { id: 'sqli-libinjection', class: 'sqli', paranoia: 1, operator: { is_sqli: true } },
  { id: 'sqli-time', class: 'sqli', paranoia: 1, operator: ci('\\b(?:sleep|benchmark|pg_sleep)\\s*\\(|\\bwaitfor\\s+delay\\b') },
  { id: 'sqli-union', class: 'sqli', paranoia: 1, operator: ci('\\bunion\\b[\\s/*()]+(?:all[\\s/*()]+)?select\\b') },
  {
    id: 'sqli-functions',
    class: 'sqli',
    paranoia: 1,
    operator: ci('\\b(?:extractvalue|updatexml|load_file|information_schema|xp_cmdshell|utl_inaddr|dbms_pipe|gtid_subset|pg_read_file)\\b'),
  },
  // A quote closed and the rest of the statement commented away: `admin' #`, `1'-- -`.
  { id: 'sqli-quote-comment', class: 'sqli', paranoia: 1, operator: ci("[\\w)]'\\s*(?:--|#)\\s*-?\\s*$") },
  // A quote closed and a second statement stacked after it.
  {
    id: 'sqli-quote-stacked',
    class: 'sqli',
    paranoia: 1,
    operator: ci("'\\s*;\\s*(?:drop|delete|insert|update|truncate|create|copy|alter|exec|declare|shutdown|grant)\\s+\\w"),
  },
  {
    id: 'sqli-case-when',
    class: 'sqli',
    paranoia: 1,
    operator: ci('\\(\\s*select\\s+case\\s+when\\b|\\bcase\\s+when\\s*\\(?\\s*\\d+\\s*=\\s*\\d+'),
  },
  { id: 'sqli-comment-tail', class: 'sqli', paranoia: 2, operator: ci('[\'"`)]\\s*(?:--|#|/\\*)') },
  { id: 'sqli-stacked', class: 'sqli', paranoia: 2, operator: ci(';\\s*(?:drop|delete|insert|update|shutdown|exec|declare|select)\\b') },
  // XSS: libinjection's HTML tokenizer, plus script URIs and handlers libinjection lets through.
  { id: 'xss-libinjection', class: 'xss', paranoia: 1, operator: { is_xss: true } },
  {
    id: 'xss-script-uri',
    class: 'xss',
    paranoia: 1,
    // Browsers drop tabs and newlines inside a scheme, and the value may arrive entity-encoded.
    operator: ci('j\\s*a\\s*v\\s*a\\s*s\\s*c\\s*r\\s*i\\s*p\\s*t\\s*:|vbscript\\s*:|data\\s*:\\s*text/html'),
    transformers: ENTITY_AND_JS_DECODE,
  },
  { id: 'xss-handler', class: 'xss', paranoia: 1, operator: ci('<[a-z!/][^>]*\\b(?:on[a-z]{3,}|ng-[a-z]+)\\s*=') },
  // Breaking out of a JavaScript string the value is echoed into: `';alert(1);//`, `'-alert(1)-'`.
  {
    id: 'xss-js-breakout',
    class: 'xss',
    paranoia: 1,
    operator: ci('[\'"]\\s*(?:;|-|\\+|\\|\\||&&)\\s*(?:alert|prompt|confirm|eval|fetch)\\s*\\('),
  },
  // Client-side template injection (AngularJS, Vue) and template literals.
  {
    id: 'xss-template',
    class: 'xss',
    paranoia: 1,
    operator: ci('\\{\\{[^}]*(?:constructor|\\$on|\\$eval)[^}]*\\}\\}|\\$\\{\\s*(?:alert|prompt|confirm)\\s*\\('),
  },
  {
    id: 'xss-tags',
    class: 'xss',
    paranoia: 1,
    operator: ci('<\\s*/?\\s*(?:script|iframe|svg|object|embed|applet|meta|base|form|math|details|marquee|isindex)\\b'),
  },
  {
    id: 'xss-expression',
    class: 'xss',
    paranoia: 2,
    operator: ci('\\{\\{.*(?:constructor|\\$eval|alert|prompt).*\\}\\}|expression\\s*\\('),
  },
  // Path traversal and local files.
  { id: 'traversal-dotdot', class: 'traversal', paranoia: 1, operator: ci('(?:^|[\\\\/／＼])\\.\\.+;?(?:[\\\\/／＼]|$)') },
  {
    id: 'traversal-files',
    class: 'traversal',
    paranoia: 1,
    operator: ci(
      '(?:^|[\\\\/])(?:etc[\\\\/](?:passwd|shadow|group|hosts|issue)|proc[\\\\/](?:self|version|\\d+)\\b|win\\.ini|boot\\.ini|windows[\\\\/]system32)',
    ),
  },
  // OS command injection: a shell separator or substitution followed by a command, as a command
  // (then a space, an operator or the end — not `id:` in a TypeScript interface).
  {
    id: 'cmdi-separator',
    class: 'cmdi',
    paranoia: 1,
    // After a newline only as a whole line (`hello\\nid`), not a struct field (`\\n\\tID string`).
    operator: ci(`(?:[;&|]|\\|\\|)\\s*${SHELL_COMMAND}|\\n\\s*${SHELL_WORDS}\\s*(?:$|[;|&<>])`),
  },
  {
    // Reading a system file after shell unescaping (backslashes and quotes removed, as
    // `c\\at /et\\c/pas\\swd` runs), which also turns separators into spaces.
    id: 'cmdi-escaped-file',
    class: 'cmdi',
    paranoia: 1,
    operator: ci('\\b(?:cat|more|less|head|tail|nl|tac|strings|base64)\\s*/etc/(?:passwd|shadow)'),
    transformers: SHELL_UNESCAPE_ETC,
  },
  // $IFS, and a command substituted with backticks or $( ) — Markdown's `code` is not a command.
  {
    id: 'cmdi-substitution',
    class: 'cmdi',
    paranoia: 1,
    operator: ci(
      `\\$\\{?IFS\\}?|(?:^|[^\`])\`\\s*(?:${SHELL_WORDS}[\\s;|&<>][^\`]*|${BARE_COMMANDS})\`|\\$\\(\\s*${SHELL_WORDS}(?:[\\s;|&<>][^)]*)?\\)`,
    ),
  },
  // SSRF-style URLs: internal addresses, metadata services, non-web schemes.
  {
    id: 'ssrf-internal',
    class: 'ssrf',
    paranoia: 1,
    operator: ci(
      '^\\s*(?:[a-z][a-z0-9+.-]*:)?//(?:[^@/]*@)?(?:localhost|localtest\\.me|127\\.\\d+(?:\\.\\d+){0,2}(?:[:/]|$)|100\\.100\\.100\\.200|instance-data|kubernetes\\.default|0\\.0\\.0\\.0|0+(?:[:/]|$)|\\[[0-9a-f:.]*\\]|169\\.254\\.\\d+\\.\\d+|10\\.\\d+\\.\\d+\\.\\d+|192\\.168\\.\\d+\\.\\d+|172\\.(?:1[6-9]|2\\d|3[01])\\.\\d+\\.\\d+|metadata(?:\\.google\\.internal)?|0x[0-9a-f]+|0[0-7]+\\.|0[0-7]{9,11}(?:[:/]|$)|\\d{8,10}(?:[:/]|$)|[a-z0-9.-]*\\.(?:internal|local|localdomain|nip\\.io|sslip\\.io|xip\\.io)(?:[:/]|$))',
    ),
    // Circled and full-width digits normalise to ASCII ones (NFKC), as URL parsers do.
    transformers: UNICODE_NORMALIZE,
  },
  { id: 'ssrf-schemes', class: 'ssrf', paranoia: 1, operator: ci('^\\s*(?:file|gopher|dict|ldap|tftp|jar|netdoc|php|expect|sftp)://') },
  // NoSQL operator injection: MongoDB operators as names (`user[$ne]`, `{"$gt": ""}`) or in values.
  {
    id: 'nosqli-operator',
    class: 'nosqli',
    paranoia: 1,
    operator: ci(
      '(?:^|[\\[{"\'\\s,])\\$(?:ne|eq|gt|gte|lt|lte|in|nin|regex|where|or|and|nor|not|exists|expr|elemMatch|function|accumulator|lookup|jsonSchema|type|mod|size|all)\\b',
    ),
  },
  // Server-side JavaScript ($where, mapReduce) injected through a string.
  {
    id: 'nosqli-js',
    class: 'nosqli',
    paranoia: 1,
    operator: ci(
      "\\bthis\\.\\w+(?:\\s*(?:===?|!==?)|\\[\\d+\\]|\\.match\\s*\\()|\\bdb\\.\\w+\\.(?:find|drop|insert|remove|update)\\w*\\s*\\(|'\\s*(?:\\|\\||&&)\\s*'[^']*'\\s*==|';\\s*return\\s+(?:true|1)\\b|\\bconstructor\\.constructor\\s*\\(",
    ),
  },
  { id: 'nosqli-sleep', class: 'nosqli', paranoia: 2, operator: ci('\\bsleep\\s*\\(\\s*\\d+\\s*\\)') },
  // Prototype pollution: a key path that a deep merge or a path setter (lodash's set, qs's
  // brackets) follows into Object.prototype on a JavaScript backend. The flattener hands names and
  // values holding `proto` over, and `constructor.prototype` for a JSON `constructor` object with a
  // `prototype` member (src/threats/waf-input.ts).
  {
    id: 'prototype-pollution',
    class: 'prototype_pollution',
    paranoia: 1,
    operator: ci('__proto__|\\bconstructor["\']?\\]?\\s*(?:\\.|\\[\\s*["\']?|:\\s*\\{\\s*["\']?)\\s*prototype\\b'),
  },
  // Paranoia 3: shapes that are suspicious rather than clearly hostile, for APIs whose inputs are
  // plain identifiers and numbers (expect false positives on free text).
  {
    id: 'sqli-statement',
    class: 'sqli',
    paranoia: 3,
    operator: ci('\\b(?:select\\b.+\\bfrom|insert\\s+into|update\\b.+\\bset|delete\\s+from|drop\\s+(?:table|database))\\b'),
  },
  { id: 'xss-any-tag', class: 'xss', paranoia: 3, operator: ci('<[a-z][a-z0-9-]*(?:\\s[^>]*)?>') },
  { id: 'traversal-any-dotdot', class: 'traversal', paranoia: 3, operator: ci('\\.\\.[\\\\/]') },
  { id: 'cmdi-metacharacters', class: 'cmdi', paranoia: 3, operator: ci('[;|`]|\\$\\(|&&') },
];

type WafRuleMember = WafRuleset['members'] extends ReadonlyMap<string, readonly (infer M)[]> ? M : never;

/**
 * The libddwaf ruleset for a paranoia level, minus the rules excluded by id. Regular-expression
 * rules of one class go to libddwaf as one alternation: RE2 scans a string once for all of them,
 * which cut the waf's cost on a 1 KB JSON body by a quarter. A transformed rule runs on its lane
 * (see Transformed), and untransformed in its class's alternation where that covers the rest.
 * The event still names the rule that matched: `members` re-tests the matched value in JS.
 * `lanes: false` applies every transformer to every string: the reference the lanes are tested against.
 */
export function wafRuleset(paranoia: number, excluded: ReadonlySet<string>, options: { lanes?: boolean } = {}): WafRuleset {
  const selected = WAF_RULES.filter((r) => r.paranoia <= paranoia && !excluded.has(r.id));
  const groups = new Map<string, { address: string; transformers?: readonly string[]; rules: WafRule[] }>();
  const add = (key: string, address: string, r: WafRule, transformers?: readonly string[]) => {
    const group = groups.get(key);
    if (group) group.rules.push(r);
    else groups.set(key, { address, ...(transformers ? { transformers } : {}), rules: [r] });
  };
  const lanes: { address: string; admits: (text: string) => boolean }[] = [];
  for (const r of selected) {
    const plainKey = 'regex' in r.operator ? r.class : r.id;
    if (!r.transformers) {
      add(plainKey, WAF_VALUES, r);
      continue;
    }
    if (options.lanes === false) {
      add(r.id, WAF_VALUES, r, r.transformers.names);
      continue;
    }
    const lane = `warden.lane.${r.id}`;
    lanes.push({ address: lane, admits: r.transformers.admits });
    add(r.id, lane, r, r.transformers.names);
    if (r.transformers.identityOtherwise) add(plainKey, WAF_VALUES, r);
  }
  const members = new Map<string, WafRuleMember[]>();
  const rules = [...groups.values()].map((group, i) => {
    const first = group.rules[0] as WafRule;
    const id = group.rules.length > 1 ? `${first.class}-group-${i}` : group.address === WAF_VALUES ? first.id : `${first.id}-lane`;
    members.set(
      id,
      group.rules.map((r) => ({
        id: r.id,
        class: r.class,
        pattern: 'regex' in r.operator ? new RegExp(r.operator.regex, 'i') : undefined,
      })),
    );
    const inputs = [{ address: group.address }];
    const regex = group.rules.map((r) => ('regex' in r.operator ? `(?:${r.operator.regex})` : '')).join('|');
    return {
      id,
      name: id,
      tags: { type: first.class, category: 'attack_attempt' },
      conditions: [
        'regex' in first.operator
          ? { operator: 'match_regex', parameters: { inputs, regex, options: { case_sensitive: false, min_length: 2 } } }
          : { operator: 'is_sqli' in first.operator ? 'is_sqli' : 'is_xss', parameters: { inputs } },
      ],
      // No removeNulls here: waf-input adds a NUL-free copy of the (rare) strings that have one,
      // instead of every rule copying every string.
      ...(group.transformers ? { transformers: group.transformers } : {}),
    };
  });
  return { ruleset: { version: '2.2', metadata: { rules_version: 'warden-1' }, rules }, members, lanes };
}
