// Copy buttons: <button data-copy="ID" hidden> copies the value of #ID.
// Without JavaScript the buttons stay hidden and the field stays selectable.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    var field = document.getElementById(b.getAttribute("data-copy"));
    if (!field || !navigator.clipboard) return;
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(field.value || field.textContent).then(
        function () { b.textContent = "Copied"; },
        function () { field.select(); b.textContent = "Press Ctrl+C to copy"; });
    });
  });
  document.querySelectorAll("input[readonly].token").forEach(function (f) {
    f.addEventListener("focus", function () { f.select(); });
  });
});
