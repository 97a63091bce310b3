// WordPools: the words synthesized requests are made of — values for string parameters (cities,
// names, currencies, units, topics), and the tables that turn a call's value into what people
// write: currency names and symbols, number words, month names, unit words.
import Foundation

/// Word pools for values and their written forms.
enum Pools {
    static let cities = ["Paris", "Berlin", "Tokyo", "Madrid", "Oslo", "Cairo", "Lima", "Toronto", "Sydney", "Mumbai", "Seoul",
                         "Nairobi", "Lisbon", "Chicago", "Boston", "Denver", "Dublin", "Prague", "Vienna", "Rome", "London",
                         "Istanbul", "Bangkok", "Mexico City", "Buenos Aires", "Cape Town", "Helsinki", "Warsaw", "Athens", "Zurich"]
    static let usCities = ["San Francisco, CA", "Austin, TX", "Seattle, WA", "Boston, MA", "Miami, FL", "Denver, CO", "Chicago, IL",
                           "Portland, OR", "Phoenix, AZ", "New York, NY", "Atlanta, GA", "Nashville, TN"]
    /// Cities written "City, Country", for descriptions that ask for that form.
    static let citiesWithCountry = ["Paris, France", "Berlin, Germany", "Tokyo, Japan", "Madrid, Spain", "Oslo, Norway", "Cairo, Egypt",
                                    "Lima, Peru", "Toronto, Canada", "Sydney, Australia", "Mumbai, India", "Seoul, South Korea",
                                    "Nairobi, Kenya", "Lisbon, Portugal", "Rome, Italy", "Dublin, Ireland", "Prague, Czech Republic"]
    static let countries = ["France", "Japan", "Brazil", "Canada", "Kenya", "India", "Germany", "Spain", "Mexico", "Norway", "Egypt",
                            "Australia", "Italy", "Chile", "Vietnam", "Poland"]
    static let currencies = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR", "CNY", "SEK", "NOK", "MXN", "BRL", "KRW"]
    /// Each code of `currencies` in words.
    static let currencyNames: [String: [String]] = [
        "USD": ["US dollars", "dollars"], "EUR": ["euros"], "GBP": ["British pounds", "pounds sterling", "pounds"],
        "JPY": ["Japanese yen", "yen"], "CHF": ["Swiss francs"], "CAD": ["Canadian dollars"], "AUD": ["Australian dollars"],
        "INR": ["Indian rupees", "rupees"], "CNY": ["Chinese yuan"], "SEK": ["Swedish kronor"], "NOK": ["Norwegian kroner"],
        "MXN": ["Mexican pesos"], "BRL": ["Brazilian reais"], "KRW": ["South Korean won"],
    ]
    /// The symbol written before an amount, for the currencies whose symbol is unambiguous.
    static let currencySymbols = ["USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩"]
    static let languages = ["English", "French", "Spanish", "German", "Japanese", "Italian", "Portuguese", "Korean", "Arabic", "Hindi"]
    static let companies = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell"]
    static let firstNames = ["Alice", "Bob", "Carmen", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Keiko", "Liam",
                             "Maya", "Nikolai", "Olga", "Pablo"]
    static let lastNames = ["Smith", "Garcia", "Tanaka", "Müller", "Rossi", "Novak", "Okafor", "Silva", "Kim", "Dubois", "Larsen"]
    static let teams = ["Lakers", "Warriors", "Celtics", "Real Madrid", "Arsenal", "Bayern Munich", "Yankees", "Red Sox", "Chelsea",
                        "Juventus", "Bulls", "Packers"]
    static let colors = ["red", "blue", "green", "black", "white", "yellow", "purple", "orange"]
    static let genres = ["jazz", "comedy", "science fiction", "rock", "documentary", "thriller", "classical", "fantasy"]
    static let foods = ["pasta", "sushi", "tacos", "curry", "pancakes", "ramen", "falafel", "paella"]
    static let topics = ["machine learning", "climate change", "renaissance art", "electric cars", "quantum computing", "ancient Rome",
                         "healthy breakfast", "solar panels", "jazz history", "marathon training", "coral reefs", "black holes"]
    /// Short texts for parameters that hold a message, review or sentence.
    static let texts = ["I loved the new update", "The delivery was late again", "Meeting moved to Friday", "What a great game last night",
                        "The soup was too salty", "Thanks for the quick reply", "Please call me back tomorrow", "The hotel room was spotless"]
    static let weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    static let syllables = ["ka", "lo", "mi", "ra", "ven", "dor", "sel", "tu", "bri", "an", "zo", "el", "qua", "nix", "ter", "pa"]

    /// Units by what they measure; a from/to pair of units is drawn from one dimension.
    static let units: [(dimension: String, units: [String])] = [
        ("length", ["meters", "kilometers", "miles", "feet", "inches", "centimeters", "yards"]),
        ("mass", ["kilograms", "grams", "pounds", "ounces"]),
        ("volume", ["liters", "milliliters", "gallons", "cups"]),
        ("temperature", ["celsius", "fahrenheit", "kelvin"]),
        ("time", ["seconds", "minutes", "hours", "days"]),
        ("speed", ["m/s", "km/h", "mph"]),
        ("area", ["square meters", "square feet", "acres", "hectares"]),
    ]
    /// The dimension whose words a description uses ("temperature", "distance" → length).
    static let dimensionWords: [(word: String, dimension: String)] = [
        ("temperature", "temperature"), ("speed", "speed"), ("velocity", "speed"), ("weight", "mass"), ("mass", "mass"),
        ("volume", "volume"), ("area", "area"), ("length", "length"), ("distance", "length"), ("height", "length"),
        ("duration", "time"), ("time", "time"),
    ]
    /// Units a description may name after "in" ("the distance in meters"), longest first so that
    /// "m/s^2" wins over "m/s".
    static let unitWords = ["square meters", "square feet", "square miles", "cubic meters", "degrees celsius", "degrees fahrenheit",
                            "m/s^2", "m/s²", "m/s", "km/h", "mph", "kilometers", "kilometres", "meters", "metres", "centimeters", "millimeters",
                            "miles", "feet", "inches", "km", "cm", "mm", "kilograms", "kg", "grams", "lbs", "ounces", "liters", "litres",
                            "milliliters", "gallons", "seconds", "minutes", "hours", "days", "weeks", "months", "years", "nights",
                            "degrees", "celsius", "fahrenheit", "kelvin", "amperes", "amps", "volts", "ohms", "watts", "kilowatts",
                            "joules", "newtons", "hertz", "hz", "pascals", "calories", "kcal", "bytes", "megabytes", "gigabytes",
                            "pixels", "coulombs", "tesla", "moles", "atm"]
    /// Units of time: a number in one of them reads "for 25 minutes".
    static let durationUnits: Set<String> = ["seconds", "minutes", "hours", "days", "weeks", "months", "years", "nights"]

    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                         "November", "December"]
    static let monthAbbreviations = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private static let ones = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                               "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
    private static let tens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

    /// An integer from 0 to 99 in English words ("twenty-five"); nil outside that range.
    static func numberWords(_ n: Int64) -> String? {
        guard (0...99).contains(n) else { return nil }
        if n < 20 { return ones[Int(n)] }
        let t = tens[Int(n / 10)]
        return n % 10 == 0 ? t : t + "-" + ones[Int(n % 10)]
    }
}
