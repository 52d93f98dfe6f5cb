// Inbox and unassigned lists: a "select all on this page" box over the row checkboxes. The
// pages work without this file (tick rows one by one); the box stays hidden until it runs.
(function () {
  "use strict";

  document.querySelectorAll("[data-select-all]").forEach(function (box) {
    box.hidden = false;
  });

  document.addEventListener("change", function (event) {
    const target = event.target;
    const formId = target.getAttribute && target.getAttribute("data-select-all");
    if (!formId) {
      return;
    }
    document.querySelectorAll("#" + formId + " input[name='ids']").forEach(function (row) {
      row.checked = target.checked;
    });
  });
})();
