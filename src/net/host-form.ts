/**
 * The form of a Host (or `:authority`): `uri-host [":" port]` (RFC 9110 §7.2). No userinfo
 * (`localhost@evil.example`, which RFC 9110 §4.2.4 says to treat as an error), no list
 * (`a.example,evil.example`, two Hosts joined), no white space, no path. Shared by the Host check
 * (adversarial.md 200) and the check of a believed X-Forwarded-Host (red team 29 F1): either reaches
 * the backend as the host a framework builds absolute URLs from.
 *
 * One anchored pass: the host's class holds no `:`, so the optional port is tried once per
 * position given back, and a rejected value costs linear time.
 */
const HOST_FORM = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+;=-]*)(?::[0-9]*)?$/;

/** `value` has the form of a Host; an empty one has it too (RFC 9110 §7.2: a target with no authority). */
export function isHostForm(value: string): boolean {
  return HOST_FORM.test(value);
}

/** `value` names a host, as an X-Forwarded-Host must: the form of a Host, with the host itself given. */
export function namesHost(value: string): boolean {
  return value !== '' && value.charCodeAt(0) !== 0x3a /* : */ && HOST_FORM.test(value);
}
