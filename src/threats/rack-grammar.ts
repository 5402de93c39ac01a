/**
 * Pieces of Rack 2's multipart grammar (rack/multipart.rb), as JavaScript regular-expression
 * source, for the readings of a part's header block (rack-part-name.ts, rack-file-name.ts). Ruby's
 * `\s` is ASCII white space, written out: JavaScript's takes U+00A0, a Latin-1 byte here.
 */
export const RUBY_SPACE = '[ \\t\\r\\n\\f\\v]';
/** Rack::Multipart::TOKEN: anything but white space and `()<>,;:\"/[]?=`. */
export const TOKEN = '[^ \\t\\r\\n\\f\\v()<>,;:\\\\"/\\[\\]?=]+';
/** Rack::Multipart::VALUE: a quoted string (which may run over lines) or a token. */
export const VALUE = `"(?:\\\\"|[^"])*"|${TOKEN}`;
