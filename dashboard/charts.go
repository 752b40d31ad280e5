package dashboard

import (
	"html/template"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/usage"
)

// phoneChartWidth is the viewBox width of the chart drawn for phones: about
// the width it is shown at on a 390 px screen, so its text keeps its size.
const phoneChartWidth = 360

// chartHTML draws points twice, for a wide screen and for a phone; the
// stylesheet shows one. Scaling one wide chart down to a phone shrank its
// text to half size, and scrolling it hid either the axis or the latest data.
func chartHTML(points []keys.UsagePoint, o usage.ChartOptions) template.HTML {
	wide := usage.SVG(points, o)
	o.Width, o.Height = phoneChartWidth, 230
	narrow := usage.SVG(points, o)
	return `<div class="chart-wide">` + wide + `</div><div class="chart-narrow">` + narrow + `</div>`
}
