// The queue: "select all" on the page, the assignee box only for "Assign to", and a question
// before a bulk resolve or reject. The page works without this file (plain form, plain POST).
(function () {
  "use strict";

  function bulkForm() {
    return document.getElementById("queue-bulk");
  }

  function showAssignee() {
    const action = document.getElementById("bulk-action");
    const box = document.getElementById("bulk-assignee-box");
    if (action && box) {
      box.classList.toggle("d-none", action.value !== "assign");
    }
  }

  document.addEventListener("change", function (event) {
    const target = event.target;
    if (target.id === "queue-select-all") {
      document.querySelectorAll("#case-queue .queue-select").forEach(function (box) {
        box.checked = target.checked;
      });
    } else if (target.id === "bulk-action") {
      showAssignee();
    }
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form !== bulkForm()) {
      return;
    }
    const chosen = form.querySelectorAll(".queue-select:checked").length;
    if (chosen === 0) {
      event.preventDefault();
      window.alert("Select at least one case first.");
      return;
    }
    const action = form.querySelector("#bulk-action").value;
    if (action === "resolve" || action === "reject" || action === "send_proposed") {
      const words = { resolve: "Resolve", reject: "Reject", send_proposed: "Send the proposed notice for" }[action];
      if (!window.confirm(words + " " + chosen + " case" + (chosen === 1 ? "" : "s") + "?")) {
        event.preventDefault();
      }
    }
  });

  // After htmx swaps in a new page of results, the bar starts over.
  document.addEventListener("htmx:afterSettle", showAssignee);
  document.addEventListener("DOMContentLoaded", showAssignee);
})();
