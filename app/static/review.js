// Decision page keyboard shortcuts: A 通过, R 驳回 (focus the reason), F 不通过, C 领取, N 下一条.
// R and F only pick the decision and put the cursor in the reason; Enter (or the button) sends it.
// The items a 驳回 sends back: ticking one puts the cursor in its reason, typing a reason ticks it.
(function () {
  "use strict";
  var pending = null; // "return" | "refuse" once R/F was pressed

  function click(id) {
    var el = document.getElementById(id);
    if (el) { el.click(); return true; }
    return false;
  }

  function pick(decision) {
    var preset = document.getElementById("reason-preset");
    if (!preset) return;
    pending = decision;
    var form = document.getElementById("decide-form");
    form.dataset.pending = decision;
    document.getElementById(decision === "return" ? "return-btn" : "refuse-btn").classList.add("rv-armed");
    preset.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
    if (typing && event.key === "Enter" && target.hasAttribute("data-return-reason")) {
      // An item's reason belongs to the decision form, whose first button is 通过: Enter must not
      // send it (a reviewer writing a 驳回 reason would approve).
      event.preventDefault();
      return;
    }
    if (typing) {
      // Enter in the reason sends the picked decision (a select would otherwise swallow it).
      if (event.key === "Enter" && pending && target.tagName !== "TEXTAREA") {
        event.preventDefault();
        click(pending === "return" ? "return-btn" : "refuse-btn");
      }
      return;
    }
    switch (event.key.toLowerCase()) {
      case "a": if (click("approve-btn")) event.preventDefault(); break;
      case "r": event.preventDefault(); pick("return"); break;
      case "f": event.preventDefault(); pick("refuse"); break;
      case "c": if (click("claim-btn")) event.preventDefault(); break;
      case "n": if (click("next-link")) event.preventDefault(); break;
    }
  });

  document.querySelectorAll("[data-return-tick]").forEach(function (tick) {
    var reason = document.querySelector('[data-return-reason="' + tick.getAttribute("data-return-tick") + '"]');
    if (!reason) return;
    tick.addEventListener("change", function () { if (tick.checked) reason.focus(); });
    reason.addEventListener("input", function () { if (reason.value.trim()) tick.checked = true; });
  });
})();
