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

    /// New phrasings that check the trained demo (`Deploy/demo/check_multiple.json` holds them
    /// with their gold calls, for `paratool eval`); like `exampleQueries`, never trained on.
    public static let checkQueries = [
        "Is it raining in Amsterdam today?",
        "How hot is it in Phoenix right now, in fahrenheit?",
        "Tell me the current temperature in Kyoto in celsius, please.",
        "How many Swiss francs do I get for 80 British pounds?",
        "I need to change 1200 Canadian dollars into US dollars.",
        "What are 45.5 euros worth in Mexican pesos?",
        "Any flights from Chicago to Miami on 2027-01-09?",
        "I want to fly to Paris from Madrid on 2027-03-03.",
        "Look up flights leaving Seattle for Tokyo on December 30, 2026.",
        "Remind me in 45 minutes.",
        "Set a timer for an hour and a half.",
        "Can you count down 5 minutes for my tea?",
    ]

    /// A second check set of new phrasings (`Deploy/demo/check2_multiple.json`), written after
    /// the first had been used to tune the first start; never trained on either.
    public static let secondCheckQueries = [
        "Will I need an umbrella in Dublin?",
        "What's it like outside in Oslo, in celsius?",
        "Weather for Buenos Aires please",
        "Convert 300 Japanese yen to euros.",
        "How much is 75 US dollars in British pounds?",
        "Exchange 20 Australian dollars to Indian rupees.",
        "Find me a flight from Berlin to Rome on 2027-02-14.",
        "Are there flights to Boston from Denver on 2027-05-01?",
        "I need to get from Lima to Bogota on 2027-08-20.",
        "Start a 20 minute timer.",
        "Wake me up in 15 minutes.",
        "Time my pasta for 12 minutes.",
        "Do I need a jacket in Edinburgh?",
        "What's the forecast for Toronto in fahrenheit?",
        "Current weather in Nairobi?",
        "Turn 500 Swedish kronor into Norwegian kroner.",
        "What's 60 pounds in euros?",
        "I have 1000 yen, how many dollars is that?",
        "Show flights from Toronto to Vancouver on 2027-04-12.",
        "Flying out of Sydney to Auckland on 2027-06-30, what's available?",
        "Which flights go from Athens to Cairo on March 8, 2027?",
        "Give me a 3 minute countdown.",
        "Set an alarm to go off in 30 minutes.",
        "I need a two hour timer.",
    ]

    /// A check set of requests that need two calls (`Deploy/demo/check3_parallel_multiple.json`,
    /// scored by BFCL's order-free parallel rules): six ask one tool twice, six two tools once
    /// each; written before any store answered them, never trained on.
    public static let multiCallCheckQueries = [
        "What's the weather in Paris and in Rome?",
        "Convert 100 US dollars to euros and 100 US dollars to yen.",
        "Find flights from London to New York on 2027-02-02 and back from New York to London on 2027-02-09.",
        "Set one timer for 10 minutes and another one for 25 minutes.",
        "How warm is it in Cairo and in Lisbon, in celsius?",
        "Convert 50 GBP to USD, and 70 EUR to CHF.",
        "What's the weather in Vienna? Also set a timer for 15 minutes.",
        "Find a flight from Denver to Austin on 2027-07-04 and tell me the weather in Austin.",
        "Convert 200 USD to MXN and check the weather in Mexico City.",
        "Start a 40 minute timer and convert 15 euros to US dollars.",
        "Look for flights from Madrid to Lisbon on 2027-09-15, and how much is 300 euros in US dollars?",
        "Is it cold in Helsinki? And start a 5 minute timer.",
    ]

    /// A check set of requests no demo tool does (`Deploy/demo/check4_irrelevance.json`, scored
    /// by BFCL's irrelevance rule: correct means no call): near misses (a hotel, a unit
    /// conversion, a cancellation, the time) and requests for no tool at all; written before any
    /// store answered them, never trained on.
    public static let noCallCheckQueries = [
        "Book me a hotel room in Lisbon for two nights.",
        "How many kilometres are in 26 miles?",
        "Tell me a fun fact about octopuses.",
        "What's the square root of 144?",
        "Cancel my flight to Rome next week.",
        "Who painted the Mona Lisa?",
        "Order a large pepperoni pizza for delivery.",
        "What time is it in Tokyo right now?",
        "Send a text message to Anna saying I'll be late.",
        "Recommend a sci-fi movie for tonight.",
        "Play some relaxing jazz music.",
        "How do you say thank you in Japanese?",
    ]

    /// Every query the demo's training must hold out.
    public static var heldOutQueries: [String] {
        exampleQueries + checkQueries + secondCheckQueries + multiCallCheckQueries + noCallCheckQueries
    }
}
