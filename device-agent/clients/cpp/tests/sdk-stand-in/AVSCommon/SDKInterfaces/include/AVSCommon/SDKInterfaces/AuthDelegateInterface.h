// Stand-in written by avs-pair from the AVS Device SDK's documentation (see tests/sdk-stand-in/README.md).
// With AVS_PAIR_STAND_IN_FIRST_SDK_RELEASES defined (tests/sdk-legacy-stand-in does), the first releases'
// shape: no onAuthFailure.
#ifndef ALEXA_CLIENT_SDK_AVSCOMMON_SDKINTERFACES_INCLUDE_AVSCOMMON_SDKINTERFACES_AUTHDELEGATEINTERFACE_H_
#define ALEXA_CLIENT_SDK_AVSCOMMON_SDKINTERFACES_INCLUDE_AVSCOMMON_SDKINTERFACES_AUTHDELEGATEINTERFACE_H_

#include <memory>
#include <string>

#include <AVSCommon/SDKInterfaces/AuthObserverInterface.h>

namespace alexaClientSDK {
namespace avsCommon {
namespace sdkInterfaces {

/// Provides LWA access tokens to the SDK's components.
class AuthDelegateInterface {
public:
    virtual ~AuthDelegateInterface() = default;
    /// The observer hears the current state during this call, then every change.
    virtual void addAuthObserver(std::shared_ptr<avsCommon::sdkInterfaces::AuthObserverInterface> observer) = 0;
    virtual void removeAuthObserver(std::shared_ptr<avsCommon::sdkInterfaces::AuthObserverInterface> observer) = 0;
    /// The current token; empty when none has been acquired yet or the last one expired.
    virtual std::string getAuthToken() = 0;
#ifndef AVS_PAIR_STAND_IN_FIRST_SDK_RELEASES
    /// AVS refused a request authorized with `token`.
    virtual void onAuthFailure(const std::string& token) = 0;
#endif
};

}  // namespace sdkInterfaces
}  // namespace avsCommon
}  // namespace alexaClientSDK

#endif
