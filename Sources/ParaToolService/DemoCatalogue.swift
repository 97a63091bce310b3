// DemoCatalogue: the four-tool catalogue `paratool up` serves out of the box, with example
// queries. The same JSON is Deploy/demo/tools.json (a test keeps the two equal).
import ParaTool

/// The embedded demo tools.
public enum DemoCatalogue {
    /// The catalogue as JSON (a ToolSpec array).
    public static let json = #"""
[
  {"name": "get_weather", "description": "Get the current weather for a city.",
   "parameters": {"type": "object", "properties": {
     "city": {"type": "string", "description": "The city name, e.g. Paris"},
     "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"}},
     "required": ["city"]}},
  {"name": "convert_currency", "description": "Convert an amount of money from one currency to another.",
   "parameters": {"type": "object", "properties": {
     "amount": {"type": "number", "description": "The amount to convert"},
     "from": {"type": "string", "description": "Source currency code, e.g. USD"},
     "to": {"type": "string", "description": "Target currency code, e.g. EUR"}},
     "required": ["amount", "from", "to"]}},
  {"name": "search_flights", "description": "Search flights between two cities on a date.",
   "parameters": {"type": "object", "properties": {
     "origin": {"type": "string", "description": "Departure city"},
     "destination": {"type": "string", "description": "Arrival city"},
     "date": {"type": "string", "description": "Travel date, YYYY-MM-DD"}},
     "required": ["origin", "destination", "date"]}},
  {"name": "set_timer", "description": "Set a countdown timer.",
   "parameters": {"type": "object", "properties": {
     "minutes": {"type": "integer", "description": "Length of the timer in minutes"}},
     "required": ["minutes"]}}
]
"""#

    /// The parsed catalogue.
    public static func catalogue() throws -> ToolCatalogue { try ToolCatalogue.parse(json) }

    /// Queries that `paratool send` can try against the demo (none is used in training).
    public static let exampleQueries = [
        "What's the weather like in Lisbon right now?",
        "Convert 250 EUR to JPY.",
        "Find me a flight from Boston to Denver on 2026-12-18.",
        "Start a 25 minute timer.",
    ]
}
