// Filter the per-note view by code (substring of VOCABULARY:CODE, or NIL) and by context flag: mentions that do not
// match are dimmed, notes without any match are hidden. Without JavaScript every note is simply shown.
(function () {
  var code = document.getElementById("filter-code");
  var flag = document.getElementById("filter-flag");
  var count = document.getElementById("filter-count");
  var notes = document.querySelectorAll("section.note");
  function apply() {
    var wanted = code.value.trim().toLowerCase(), state = flag.value, active = wanted !== "" || state !== "", shown = 0;
    notes.forEach(function (note) {
      var hits = 0;
      note.querySelectorAll("mark.m").forEach(function (m) {
        var ok = (wanted === "" || m.dataset.code.toLowerCase().indexOf(wanted) >= 0) &&
                 (state === "" || (" " + m.dataset.flags + " ").indexOf(" " + state + " ") >= 0);
        m.classList.toggle("dim", active && !ok);
        if (ok) hits += 1;
      });
      note.hidden = active && hits === 0;
      if (!note.hidden) shown += 1;
    });
    count.textContent = shown + " of " + notes.length + " notes shown";
  }
  code.addEventListener("input", apply);
  flag.addEventListener("change", apply);
  apply();
})();
