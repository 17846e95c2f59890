/* consent-proxy stand-in: the global functions of a removed tracker script, absorbing any call and property; it sends nothing */
(w => {
  "use strict";
  const d = (document.currentScript || {}).dataset || {};
  // Any call, new, or property read gives the stand-in back; as text it is "", as a
  // number 0; it is no Promise (await does not wait) and iterates as empty.
  const none = function () {};
  const absorb = new Proxy(none, {
    get: (t, k) => k == Symbol.toPrimitive ? () => "" : k == Symbol.iterator ? () => [][Symbol.iterator]()
      : typeof k == "symbol" || k == "then" ? undefined : absorb,
    set: () => true, deleteProperty: () => true, defineProperty: () => true,
    apply: () => absorb, construct: () => absorb,
  });
  for (const n of (d.names || "").split(" ")) if (/^[A-Za-z_$][\w$]*$/.test(n) && !(n in w)) w[n] = absorb;
})(window);
