// Every figure of the book opens at full size when clicked (figures are drawn at 150 dpi and
// often shown smaller than that).
document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.querySelectorAll("main figure img, main .cell_output img")) {
    if (img.closest("a")) continue;
    const link = document.createElement("a");
    link.href = img.src;
    link.target = "_blank";
    link.rel = "noopener";
    link.title = "Open the figure at full size";
    img.replaceWith(link);
    link.appendChild(img);
  }
});
