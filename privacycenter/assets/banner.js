// Steward consent banner: records the choice without leaving the page.
// Without this script the banner's form posts and comes back.
(function () {
  "use strict";
  var box = document.getElementById("steward-consent-banner");
  if (!box || !window.fetch || !window.FormData) return;
  var form = box.querySelector("form"), status = box.querySelector(".banner-status"), choice = "save";
  form.addEventListener("click", function (e) {
    if (e.target.name === "choice") choice = e.target.value;
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var data = new FormData(form);
    data.set("choice", choice);
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function () { box.hidden = true; })
      .catch(function () { status.textContent = "Your choice could not be saved. Please try again."; });
  });
})();
