/* Urja back office: the little behaviour HTMX does not give for free. */
document.addEventListener("htmx:afterSwap", function (e) {
  if (e.target.classList && e.target.classList.contains("panel")) e.target.removeAttribute("aria-busy");
});
document.addEventListener("htmx:responseError", function (e) {
  var el = e.detail.elt;
  if (el && el.classList && el.classList.contains("panel")) {
    el.removeAttribute("aria-busy");
    var failed = el.querySelector(".failed");
    if (failed) failed.hidden = false;
    var loading = el.querySelector(".loading");
    if (loading) loading.hidden = true;
  }
});
/* Print buttons (receipts, bills): no inline handlers, the Content-Security-Policy allows none. */
document.addEventListener("click", function (e) {
  var button = e.target.closest && e.target.closest("[data-print]");
  if (button) window.print();
});
