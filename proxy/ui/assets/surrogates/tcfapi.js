/* consent-proxy surrogate: IAB TCF v2 __tcfapi answering that no TCF consent is available */
(w => {
  const old = w.__tcfapi;
  // A CMP that is running (or this one) stays; a CMP's stub answers 'ping' with cmpStatus 'stub'.
  let stub = typeof old != "function";
  if (!stub) try { old("ping", 2, r => (stub = !!r && r.cmpStatus == "stub")); } catch (e) {}
  if (!stub) return;
  // Consent comes from this proxy, which is no registered CMP: say 'error' (no TC string, no
  // consent to any purpose or vendor, GDPR taken to apply) and answer every call once, with
  // success false, so that code waiting on a callback goes on.
  const ping = { gdprApplies: true, cmpLoaded: true, cmpStatus: "error", displayStatus: "disabled", apiVersion: "2.2" };
  const data = () => ({ tcString: "", gdprApplies: true, cmpStatus: "error", purpose: { consents: {}, legitimateInterests: {} }, vendor: { consents: {}, legitimateInterests: {} } });
  const api = (cmd, v, cb) => {
    if (typeof cb != "function") return;
    if (cmd == "ping") cb(ping); // synchronous, as the specification asks of ping
    else setTimeout(() => (cmd == "removeEventListener" ? cb(false) : cb(cmd == "getVendorList" ? null : data(), false)));
  };
  const queued = typeof old == "function" ? old() : []; // a stub returns its queue when called with no arguments
  w.__tcfapi = api;
  (Array.isArray(queued) ? queued : []).forEach(a => api(...a));
})(window);
