/* consent-proxy surrogate: Facebook JavaScript SDK (FB), no login, no plugins, nothing sent */
(w => {
  if (w.FB && w.FB.init) return; // the real SDK, or this one
  const once = ((document.currentScript || {}).dataset || {}).once;
  const later = (f, x) => typeof f == "function" && setTimeout(() => f(x));
  const out = { status: "unknown", authResponse: null }; // what the SDK says of a visitor not logged in
  const none = () => {};
  const last = a => [...a].reverse().find(x => typeof x == "function");
  const fb = (w.FB = {
    init: none, getAuthResponse: () => null, getAccessToken: () => null, getUserID: () => "",
    getLoginStatus: cb => later(cb, out), login: cb => later(cb, out), logout: cb => later(cb, out),
    api: (...a) => later(last(a), { error: { message: "Unavailable without consent", type: "OAuthException", code: 0 } }),
    ui: (p, cb) => later(cb), // as when the visitor closes the dialog
    XFBML: { parse: (el, cb) => later(cb) },
    Event: { subscribe: none, unsubscribe: none },
    AppEvents: { logEvent: none, logPageView: none, logPurchase: none, activateApp: none, EventNames: {}, ParameterNames: {} },
    Canvas: { setAutoGrow: none, setSize: none, scrollTo: none, setDoneLoading: none },
  });
  // data-once: the proxy may add the real SDK after a post the visitor loads once. It
  // does not start while window.FB exists, so this one steps aside when it appears.
  if (once) {
    const sdk = n => n.tagName == "SCRIPT" && /^https:\/\/connect\.facebook\.net\/[\w-]+\/sdk\.js/.test(n.src);
    const watch = new MutationObserver(records => {
      if (!records.some(r => [...r.addedNodes].some(sdk))) return;
      watch.disconnect();
      if (w.FB === fb) delete w.FB;
    });
    watch.observe(document, { childList: true, subtree: true });
    document.addEventListener("DOMContentLoaded", () => watch.disconnect()); // it comes in the markup
  }
  // The SDK calls window.fbAsyncInit once it has loaded: wait for the page's own scripts
  // too (not once this one stepped aside: the real SDK calls it).
  const init = () => { const f = w.fbAsyncInit; if (typeof f == "function" && !f.hasRun && w.FB === fb) { f.hasRun = true; f(); } };
  if (document.readyState == "loading") document.addEventListener("DOMContentLoaded", init);
  else setTimeout(init);
})(window);
