// hfgcot viewer: filter by status, search the texts, and page through the rows of this file.
// Only the rows of the current page are in the document; their images load lazily.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("hfgcot-data").textContent);
  const pageSize = Math.max(1, Number(document.body.dataset.pageSize) || 20);
  const $ = (id) => document.getElementById(id);
  const rows = $("hfgcot-rows");
  const status = $("hfgcot-status");
  const search = $("hfgcot-search");
  let shown = data.map((_, i) => i);
  let page = 0;

  function render() {
    const pages = Math.max(1, Math.ceil(shown.length / pageSize));
    page = Math.min(Math.max(page, 0), pages - 1);
    const slice = shown.slice(page * pageSize, (page + 1) * pageSize);
    rows.innerHTML = slice.map((i) => data[i].h).join("");
    $("hfgcot-count").textContent = shown.length + " of " + data.length + " rows";
    $("hfgcot-page").textContent = "page " + (page + 1) + " of " + pages;
    $("hfgcot-prev").disabled = page === 0;
    $("hfgcot-next").disabled = page >= pages - 1;
  }

  function filter() {
    const want = status.value;
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    shown = [];
    data.forEach((r, i) => {
      if ((want === "" || r.s === want) && words.every((w) => r.t.includes(w))) shown.push(i);
    });
    page = 0;
    render();
  }

  status.addEventListener("change", filter);
  search.addEventListener("input", filter);
  $("hfgcot-prev").addEventListener("click", () => { page -= 1; render(); window.scrollTo(0, 0); });
  $("hfgcot-next").addEventListener("click", () => { page += 1; render(); window.scrollTo(0, 0); });
  render();
})();
