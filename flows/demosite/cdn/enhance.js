// The Courier's page script (served from its CDN host): marks the page as enhanced,
// which courier.css styles. In replay it runs from the archive, not from this host.
document.documentElement.classList.add("enhanced");
