/**
 * Text with the user name and password of any URL in it shown as `***`: for log lines and error
 * messages that name a URL an operator configured (a Redis URL carries its password).
 */
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^/@\s"]*@/gi;

export const withoutUrlCredentials = (text: string): string => text.replace(USERINFO, '$1***@');
