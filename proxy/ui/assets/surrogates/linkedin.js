/* consent-proxy surrogate: LinkedIn Insight Tag, lintrk() accepted and dropped, nothing sent */
(w => {
  w._linkedin_data_partner_ids = w._linkedin_data_partner_ids || [];
  const l = w.lintrk;
  if (typeof l == "function" && !Array.isArray(l.q)) return; // the real insight.min.js, or this one
  // lintrk('track', {conversion_id}) takes no callback: calls queued by the snippet are dropped.
  w.lintrk = () => {};
})(window);
