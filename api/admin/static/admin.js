// The admin page works without this file; it only adds comfort.
(function () {
  "use strict";

  // A long action (a preview) says it is working, and cannot be sent twice.
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.setAttribute("aria-disabled", "true");
        button.classList.add("busy");
        form.addEventListener("submit", function (event) { event.preventDefault(); });
      }
    }, { once: true });
  });

  // While a run is in progress, its page refreshes itself.
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "", 10);
  if (seconds > 0) {
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }

  // After a refused save, take the keyboard to the list of what to correct.
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
  }
})();
