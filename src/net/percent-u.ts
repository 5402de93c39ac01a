/**
 * `%uXXXX` as System.Web decodes it (HttpUtility.UrlDecode, Request.QueryString and Request.Form on
 * IIS, classic ASP): the non-standard escape of JavaScript's `escape()`. URLSearchParams and
 * querystring keep it literal, so `1%u0027 OR 1=1` would read as no quote at all, and `%u006cimit`
 * as a name no operation declares. `%U` too: more reading is safe, less is not.
 */
const PERCENT_U = /%[uU][0-9A-Fa-f]{4}/;
const PERCENT_U_ALL = /%[uU]([0-9A-Fa-f]{4})/g;

/** Whether `s` holds a `%uXXXX` escape. */
export const hasPercentU = (s: string): boolean => PERCENT_U.test(s);

/** `s` with every `%uXXXX` escape decoded (`%XX` left as it is). */
export const percentUDecoded = (s: string): string => s.replace(PERCENT_U_ALL, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
